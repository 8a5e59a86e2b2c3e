# SPDX-License-Identifier: BSD-2-Clause
# Install rules: the public header, libchm (shared + static), an exported CMake package
# (find_package(chm) -> chm::chm, chm::chm_static) and a pkg-config file chm.pc.
#
#   cmake --install build --prefix P
#     P/include/chm.h (+ P/include/chm/*.h)
#     P/<libdir>/libchm.so*, P/<libdir>/libchm.a
#     P/<libdir>/cmake/chm/{chmConfig,chmConfigVersion,chmTargets*}.cmake
#     P/<libdir>/pkgconfig/chm.pc
#
# Both the CMake package and chm.pc are relocatable: the CMake files locate the prefix from
# their own path, and chm.pc is written at install time with the prefix actually installed to
# (so `cmake --install build --prefix P` gives a chm.pc that points at P).
include(CMakePackageConfigHelpers)

# Where the CMake package files and chm.pc go (relative to the prefix). Derived from
# CMAKE_INSTALL_LIBDIR on every configure (not cached: GNUInstallDirs changes the libdir when
# the prefix changes, e.g. to lib/<multiarch> for /usr); -D on the command line overrides.
if(NOT DEFINED CHM_INSTALL_CMAKEDIR)
  set(CHM_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/chm")
endif()
if(NOT DEFINED CHM_INSTALL_PKGCONFIGDIR)
  set(CHM_INSTALL_PKGCONFIGDIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
endif()

# ---- header(s) -----------------------------------------------------------------------------
# The licence travels with the header and libraries (BSD-2-Clause, LICENSE at the top).
install(FILES "${PROJECT_SOURCE_DIR}/LICENSE" DESTINATION "${CMAKE_INSTALL_DATADIR}/doc/chm")
install(FILES "${PROJECT_SOURCE_DIR}/include/chm.h"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT Development)
# include/chm/*.h, if chm.h is ever split (OPTIONAL: no error while the folder does not exist)
install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/chm/"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/chm" COMPONENT Development OPTIONAL
        FILES_MATCHING PATTERN "*.h")

# ---- libraries -----------------------------------------------------------------------------
install(TARGETS chm chm_static EXPORT chmTargets
  LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT Runtime
          NAMELINK_COMPONENT Development
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT Development
  RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT Runtime)

# ---- CMake package -------------------------------------------------------------------------
# chmTargets.cmake refers to Threads::Threads and PkgConfig::URCU (the static library's link
# interface); chmConfig.cmake re-creates them before including it.
install(EXPORT chmTargets NAMESPACE chm:: FILE chmTargets.cmake
        DESTINATION "${CHM_INSTALL_CMAKEDIR}" COMPONENT Development)

configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/chmConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/chmConfig.cmake"
  INSTALL_DESTINATION "${CHM_INSTALL_CMAKEDIR}")
# 0.x: only the same minor version is compatible; from 1.0 on, the same major version.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(_chm_compat SameMinorVersion)
else()
  set(_chm_compat SameMajorVersion)
endif()
# chmConfigVersion.cmake is CMake's generated file; the licence line is put in front of it, so
# every file of the package states the licence (as chmConfig.cmake and chm.pc do).
write_basic_package_version_file("${PROJECT_BINARY_DIR}/chmConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}" COMPATIBILITY ${_chm_compat})
file(READ "${PROJECT_BINARY_DIR}/chmConfigVersion.cmake" _chm_version_file)
file(WRITE "${PROJECT_BINARY_DIR}/chmConfigVersion.cmake"
  "# SPDX-License-Identifier: BSD-2-Clause\n# chm's licence; its text is installed as share/doc/chm/LICENSE.\n${_chm_version_file}")
unset(_chm_version_file)
unset(_chm_compat)
install(FILES "${PROJECT_BINARY_DIR}/chmConfig.cmake" "${PROJECT_BINARY_DIR}/chmConfigVersion.cmake"
        DESTINATION "${CHM_INSTALL_CMAKEDIR}" COMPONENT Development)

# Use from a build tree without installing: CMAKE_PREFIX_PATH=<build dir> or chm_DIR=<build dir>.
export(EXPORT chmTargets NAMESPACE chm:: FILE "${PROJECT_BINARY_DIR}/chmTargets.cmake")

# ---- pkg-config ----------------------------------------------------------------------------
# libdir/includedir relative to ${prefix} when the install dirs are relative (the usual case).
foreach(_d LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_d}}")
    set(CHM_PC_${_d} "${CMAKE_INSTALL_${_d}}")
  else()
    set(CHM_PC_${_d} "\${prefix}/${CMAKE_INSTALL_${_d}}")
  endif()
endforeach()
unset(_d)
# Stage 1 (configure time): everything but the prefix, which stays @CHM_PC_PREFIX@.
set(CHM_PC_PREFIX "@CHM_PC_PREFIX@")
configure_file("${PROJECT_SOURCE_DIR}/cmake/chm.pc.in" "${PROJECT_BINARY_DIR}/chm.pc.tmpl" @ONLY)
unset(CHM_PC_PREFIX)
# Stage 2 (install time): fill in the prefix being installed to, then install the result.
# A build-tree copy with the configured prefix is written too, for inspection.
set(CHM_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
configure_file("${PROJECT_BINARY_DIR}/chm.pc.tmpl" "${PROJECT_BINARY_DIR}/chm.pc" @ONLY)
unset(CHM_PC_PREFIX)
install(CODE "
  set(CHM_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  configure_file(\"${PROJECT_BINARY_DIR}/chm.pc.tmpl\" \"${PROJECT_BINARY_DIR}/chm.pc.install\" @ONLY)
  unset(CHM_PC_PREFIX)
" COMPONENT Development)
install(FILES "${PROJECT_BINARY_DIR}/chm.pc.install" RENAME chm.pc
        DESTINATION "${CHM_INSTALL_PKGCONFIGDIR}" COMPONENT Development)
