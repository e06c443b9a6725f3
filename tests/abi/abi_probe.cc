/* abi_probe.cc - abi_probe.c compiled as C++ (test_abi.c): the public
 * header must serve a C++ plugin, and the plugin must behave exactly as
 * its C build. */
#include "abi_probe.c"
