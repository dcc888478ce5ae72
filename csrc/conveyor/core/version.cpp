#include "conveyor/core/version.h"

#include <turbojpeg.h>

#include <spng.h>

#include <string>

namespace conveyor {

std::string library_versions() {
  std::string turbojpeg = "libjpeg-turbo (TurboJPEG ";
#ifdef TJ_NUMINIT
  turbojpeg += "3.x API)";
#else
  turbojpeg += "2.x API)";
#endif
  return turbojpeg + ", spng " + std::to_string(SPNG_VERSION_MAJOR) + "." +
         std::to_string(SPNG_VERSION_MINOR) + "." + std::to_string(SPNG_VERSION_PATCH);
}

}  // namespace conveyor
