#!/bin/bash
a() { :; }
