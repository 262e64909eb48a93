#!/bin/sh
# A fixed workspace status: one stable key, two volatile ones.
echo STABLE_GIT_COMMIT 0123abc
echo STABLE_RELEASE "2.1 beta"
echo BUILD_SCM_STATUS clean
echo BUILD_SCM_REVISION 17
