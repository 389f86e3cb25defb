# OmVulkanTest.cmake: appends to OM_VULKAN_TEST_ENV (tests/CMakeLists.txt) what sanitizer
# builds need to run Vulkan tests on lavapipe: LD_PRELOAD of the ASan runtime (it must
# come first) and of lavapipe. The loader dlcloses the driver at vkDestroyInstance; LSan
# then reports the driver's never-freed globals as "<unknown module>" leaks, which no
# suppression can match. Kept mapped, they stay reachable and nothing is reported.
# Including it twice is harmless.
if(NOT OMNID_SANITIZE OR OM_VULKAN_TEST_ENV MATCHES "LD_PRELOAD=")
  return()
endif()
find_library(OM_LAVAPIPE_LIB NAMES vulkan_lvp)
if(OM_LAVAPIPE_LIB)
  set(_om_preload ${OM_LAVAPIPE_LIB})
  if(CMAKE_C_COMPILER_ID STREQUAL "GNU")       # clang links its ASan runtime statically
    execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
                    OUTPUT_VARIABLE _om_asan OUTPUT_STRIP_TRAILING_WHITESPACE)
    set(_om_preload "${_om_asan}:${OM_LAVAPIPE_LIB}")
  endif()
  list(APPEND OM_VULKAN_TEST_ENV "LD_PRELOAD=${_om_preload}")
endif()
