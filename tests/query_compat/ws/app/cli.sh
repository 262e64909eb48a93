#!/bin/bash
echo cli
