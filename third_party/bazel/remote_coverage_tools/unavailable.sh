#!/bin/sh
echo "bazel coverage is not available offline; use gcov/lcov" >&2
exit 1
