#!/bin/bash
leaf() { echo leaf; }
