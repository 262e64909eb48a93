#!/bin/bash
util() { echo util; }
