#!/bin/bash
asserts() { :; }
