# ONNX Runtime 1.31.1. Either -DONNXRUNTIME_ROOT=<dir with include/ and lib/> (a release tarball
# or a distro package), or the NuGet package Microsoft.ML.OnnxRuntime restored with
# `dotnet restore` into ${CMAKE_BINARY_DIR}/nuget at configure time, in locked mode: the versions
# and content hashes are those of cmake/packages.lock.json (committed).
set(DEVICEOPS_ORT_VERSION "1.31.1")
set(ONNXRUNTIME_ROOT "" CACHE PATH "ONNX Runtime install prefix (include/, lib/); empty = NuGet")

if(ONNXRUNTIME_ROOT)
  find_path(ORT_INCLUDE_DIR onnxruntime_cxx_api.h
            PATHS "${ONNXRUNTIME_ROOT}/include" "${ONNXRUNTIME_ROOT}/include/onnxruntime"
            NO_DEFAULT_PATH REQUIRED)
  find_library(ORT_LIBRARY onnxruntime PATHS "${ONNXRUNTIME_ROOT}/lib" NO_DEFAULT_PATH REQUIRED)
else()
  set(_ort_pkg "${CMAKE_BINARY_DIR}/nuget/microsoft.ml.onnxruntime/${DEVICEOPS_ORT_VERSION}")
  if(NOT EXISTS "${_ort_pkg}/runtimes/linux-x64/native/libonnxruntime.so")
    find_program(DOTNET dotnet REQUIRED)
    message(STATUS "Restoring Microsoft.ML.OnnxRuntime ${DEVICEOPS_ORT_VERSION} from NuGet")
    execute_process(
      COMMAND "${DOTNET}" restore "${CMAKE_SOURCE_DIR}/cmake/restore.csproj"
              --packages "${CMAKE_BINARY_DIR}/nuget" --locked-mode
              "-p:BaseIntermediateOutputPath=${CMAKE_BINARY_DIR}/nuget-obj/"
      RESULT_VARIABLE _restore_rc)
    if(NOT _restore_rc EQUAL 0)
      message(FATAL_ERROR "dotnet restore of Microsoft.ML.OnnxRuntime failed (${_restore_rc})")
    endif()
  endif()
  set(ORT_INCLUDE_DIR "${_ort_pkg}/build/native/include")
  set(ORT_LIBRARY "${_ort_pkg}/runtimes/linux-x64/native/libonnxruntime.so")
endif()

# The library's SONAME is libonnxruntime.so.1 but packages ship only libonnxruntime.so: stage it
# under ${CMAKE_BINARY_DIR}/onnxruntime/lib with both names so the loader finds it via RPATH.
set(_ort_stage "${CMAKE_BINARY_DIR}/onnxruntime/lib")
file(MAKE_DIRECTORY "${_ort_stage}")
file(COPY "${ORT_LIBRARY}" DESTINATION "${_ort_stage}")
get_filename_component(_ort_name "${ORT_LIBRARY}" NAME)
if(NOT EXISTS "${_ort_stage}/libonnxruntime.so.1")
  file(CREATE_LINK "${_ort_name}" "${_ort_stage}/libonnxruntime.so.1" SYMBOLIC)
endif()
set(ORT_LIBRARY "${_ort_stage}/${_ort_name}")

add_library(onnxruntime::onnxruntime SHARED IMPORTED GLOBAL)
set_target_properties(onnxruntime::onnxruntime PROPERTIES
  IMPORTED_LOCATION "${ORT_LIBRARY}"
  IMPORTED_NO_SONAME FALSE
  INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${ORT_INCLUDE_DIR}"
  INTERFACE_INCLUDE_DIRECTORIES "${ORT_INCLUDE_DIR}")
get_filename_component(ORT_LIBRARY_DIR "${ORT_LIBRARY}" DIRECTORY)
message(STATUS "ONNX Runtime: ${ORT_LIBRARY}")
