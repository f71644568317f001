# deviceops_target_defaults(<target>): warnings (as errors in CI) and sanitizers for our code.
# Third-party headers are included as SYSTEM so their warnings do not fail our build.
add_library(deviceops_options INTERFACE)
target_compile_options(deviceops_options INTERFACE -Wall -Wextra -Wpedantic -Wshadow=local)
# GCC 12 reports false -Wrestrict positives inside libstdc++'s std::string at -O3 (GCC bug
# 105329); they are not about our code.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(deviceops_options INTERFACE -Wno-restrict)
endif()
if(DEVICEOPS_WERROR)
  target_compile_options(deviceops_options INTERFACE -Werror)
endif()
if(DEVICEOPS_SANITIZE)
  target_compile_options(deviceops_options INTERFACE -fsanitize=address,undefined
                         -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(deviceops_options INTERFACE -fsanitize=address,undefined)
  # GCC's flow analysis gives false -Wmaybe-uninitialized reports inside libstdc++ (std::regex,
  # std::optional) when the sanitizers instrument the code; the Release build keeps the warning.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(deviceops_options INTERFACE -Wno-maybe-uninitialized)
  endif()
endif()
