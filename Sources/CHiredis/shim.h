#pragma once
// redisCommand() is printf-style variadic: Swift code calls the binary-safe redisCommandArgv() instead.
#include <hiredis/hiredis.h>
