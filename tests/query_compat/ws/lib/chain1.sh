#!/bin/bash
chain1() { :; }
