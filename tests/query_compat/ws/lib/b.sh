#!/bin/bash
b() { :; }
