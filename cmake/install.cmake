# Install rules, included from the top CMakeLists.txt after src/ (the targets must exist):
#   cmake --install <build> [--prefix /usr/local]     (DESTDIR in the environment is honoured)
#   make install [PREFIX=/usr/local] [DESTDIR=/tmp/stage]
# bin/: deviceopsd, deviceops, deviceops-trainer (component runtime); lib/deviceops/: the ONNX
# Runtime library the daemon loads through its RPATH (it is staged in the build tree, not on
# the system); the shell completion of scripts/completion/ (component completion), which a unit
# test keeps equal to `deviceops completion bash|zsh`.
include(GNUInstallDirs)

set(_deviceops_private_libdir "${CMAKE_INSTALL_LIBDIR}/deviceops")
foreach(_program deviceopsd deviceops deviceops-trainer)
  if(TARGET ${_program})
    # $ORIGIN/../lib/deviceops for ONNX Runtime; link directories outside the system ones
    # (libtorch from a Python wheel, for the trainer) are kept as they were at link time.
    set_target_properties(${_program} PROPERTIES
      INSTALL_RPATH "$ORIGIN/../${_deviceops_private_libdir}"
      INSTALL_RPATH_USE_LINK_PATH TRUE)
    install(TARGETS ${_program} RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT runtime)
  endif()
endforeach()

if(ORT_LIBRARY)
  # The library file and its SONAME link (libonnxruntime.so.1), as staged by OnnxRuntime.cmake.
  install(FILES "${ORT_LIBRARY}" "${ORT_LIBRARY_DIR}/libonnxruntime.so.1"
          DESTINATION "${_deviceops_private_libdir}" COMPONENT runtime)
endif()

install(FILES "${CMAKE_SOURCE_DIR}/scripts/completion/deviceops.bash"
        DESTINATION "${CMAKE_INSTALL_DATADIR}/bash-completion/completions"
        RENAME deviceops COMPONENT completion)
install(FILES "${CMAKE_SOURCE_DIR}/scripts/completion/_deviceops"
        DESTINATION "${CMAKE_INSTALL_DATADIR}/zsh/site-functions" COMPONENT completion)

# The web assets an installed daemon serves: the dashboard bundle (web/dist, built by the
# deviceops_web target) and Swagger UI, under share/deviceops/web, which deviceopsd uses when it
# exists next to its own bin/ directory (src/daemon/main.cc, defaultWebRoot).
install(DIRECTORY "${CMAKE_SOURCE_DIR}/web/dist/"
        DESTINATION "${CMAKE_INSTALL_DATADIR}/deviceops/web/dist" COMPONENT runtime
        OPTIONAL)
install(DIRECTORY "${CMAKE_SOURCE_DIR}/web/node_modules/swagger-ui-dist/"
        DESTINATION "${CMAKE_INSTALL_DATADIR}/deviceops/web/node_modules/swagger-ui-dist"
        COMPONENT runtime OPTIONAL
        PATTERN "*.map" EXCLUDE)
