// Always-on assertion for programmer errors. Never use it on network or config input: those
// get an Expected error or a counted drop instead.
#pragma once

#include <cstdio>
#include <cstdlib>

#define RT_ASSERT(cond)                                                                \
  do {                                                                                 \
    if (!(cond)) [[unlikely]] {                                                        \
      std::fprintf(stderr, "assertion failed: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)
