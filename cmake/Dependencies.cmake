# Finds the system codec libraries. A missing one stops the build with the package to install.
find_package(PkgConfig)
find_package(Threads REQUIRED)

function(conveyor_missing_library what debian fedora brew)
  message(FATAL_ERROR
    "conveyor needs ${what}, which was not found.\n"
    "Install it and build again:\n"
    "  Debian/Ubuntu:  sudo apt-get install ${debian}\n"
    "  Fedora:         sudo dnf install ${fedora}\n"
    "  macOS:          brew install ${brew}\n"
    "(or point PKG_CONFIG_PATH at a copy you built yourself)")
endfunction()

if(PkgConfig_FOUND)
  pkg_check_modules(TURBOJPEG IMPORTED_TARGET libturbojpeg)
  pkg_check_modules(LIBJPEG IMPORTED_TARGET libjpeg)
  pkg_check_modules(SPNG IMPORTED_TARGET spng)
  pkg_check_modules(LIBDEFLATE IMPORTED_TARGET libdeflate)
endif()

if(NOT TURBOJPEG_FOUND)
  conveyor_missing_library("libjpeg-turbo (the TurboJPEG API, 2.1 or newer)"
    "libturbojpeg0-dev pkg-config" "turbojpeg-devel pkgconf" "jpeg-turbo pkg-config")
endif()
# libjpeg-turbo's libjpeg API (jpeg_crop_scanline/jpeg_skip_scanlines) for region decodes.
if(NOT LIBJPEG_FOUND)
  conveyor_missing_library("libjpeg-turbo's libjpeg API (jpeglib.h)"
    "libjpeg-dev pkg-config" "libjpeg-turbo-devel pkgconf" "jpeg-turbo pkg-config")
endif()
if(NOT SPNG_FOUND)
  conveyor_missing_library("libspng" "libspng-dev pkg-config" "libspng-devel pkgconf"
    "libspng pkg-config")
endif()
# libdeflate inflates plain PNGs (masks) in one call, several times faster than zlib.
if(NOT LIBDEFLATE_FOUND)
  conveyor_missing_library("libdeflate" "libdeflate-dev pkg-config" "libdeflate-devel pkgconf"
    "libdeflate pkg-config")
endif()
message(STATUS "conveyor: libturbojpeg ${TURBOJPEG_VERSION}, libjpeg ${LIBJPEG_VERSION}, spng ${SPNG_VERSION}, libdeflate ${LIBDEFLATE_VERSION}")
