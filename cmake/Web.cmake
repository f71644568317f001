# The dashboard bundle: web/build.mjs (esbuild over web/src, uPlot from web/node_modules, gzipped
# copies) writes web/dist, which deviceopsd serves at / (webRoot/dist). Part of `all`, rebuilt when
# a file under web/src or the build script changes. web/node_modules comes from scripts/setup.sh.
find_program(DEVICEOPS_NODE node)
set(DEVICEOPS_WEB_STAMP "${CMAKE_BINARY_DIR}/web-dist.stamp")
if(DEVICEOPS_NODE AND EXISTS "${CMAKE_SOURCE_DIR}/web/build.mjs")
  file(GLOB_RECURSE DEVICEOPS_WEB_SOURCES CONFIGURE_DEPENDS "${CMAKE_SOURCE_DIR}/web/src/*")
  add_custom_command(
    OUTPUT "${DEVICEOPS_WEB_STAMP}"
    COMMAND "${DEVICEOPS_NODE}" "${CMAKE_SOURCE_DIR}/web/build.mjs"
    COMMAND "${CMAKE_COMMAND}" -E touch "${DEVICEOPS_WEB_STAMP}"
    DEPENDS "${CMAKE_SOURCE_DIR}/web/build.mjs" "${CMAKE_SOURCE_DIR}/web/package-lock.json"
            ${DEVICEOPS_WEB_SOURCES}
    WORKING_DIRECTORY "${CMAKE_SOURCE_DIR}/web"
    COMMENT "Bundling the dashboard (web/dist)"
    VERBATIM)
  add_custom_target(deviceops_web ALL DEPENDS "${DEVICEOPS_WEB_STAMP}")
else()
  message(WARNING "node or web/build.mjs missing: the dashboard (web/dist) is not built")
  add_custom_target(deviceops_web)
endif()
