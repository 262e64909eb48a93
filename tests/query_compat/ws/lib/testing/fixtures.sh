#!/bin/bash
fixtures() { :; }
