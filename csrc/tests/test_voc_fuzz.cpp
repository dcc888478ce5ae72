// A short mutation-fuzzing run of the VOC XML reader (built with AddressSanitizer and
// UndefinedBehaviorSanitizer when the compiler has them): seeds are VOC-like documents and
// markup fragments; mutations flip, insert, delete, duplicate and splice bytes and fragments.
// CONVEYOR_FUZZ_SECONDS sets the duration; the seed changes per run (fuzz_run.h).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "fuzz_run.h"
#include "fuzz_voc_xml.h"

namespace {

const std::vector<std::string> kSeeds = {
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<annotation>\n\t<folder>VOC2012</folder>\n"
    "\t<filename>2008_000008.jpg</filename>\n\t<size><width>500</width><height>442</height>"
    "<depth>3</depth></size>\n\t<segmented>0</segmented>\n\t<object>\n\t\t<name>horse</name>\n"
    "\t\t<pose>Left</pose><truncated>0</truncated><difficult>0</difficult>\n\t\t<bndbox>"
    "<xmin>53</xmin><ymin>87</ymin><xmax>471</xmax><ymax>420</ymax></bndbox>\n\t</object>\n"
    "</annotation>\n",
    "<annotation verified=\"yes\"><object><name>dog</name><bndbox><xmin>1.5</xmin><ymin>2"
    "</ymin><xmax>3</xmax><ymax>4</ymax></bndbox><part><name>head</name></part></object>"
    "</annotation>",
    "<!DOCTYPE a SYSTEM 'x'><a xmlns='u' xmlns:p='v'><p:b c='&amp;&#x41;'>&lt;&#65;</p:b>"
    "<![CDATA[x]]y]]><!-- c --><?pi d?></a>\r\n",
    "<annotation>\n\t<folder>VOC2012</folder>\n\t<filename>2008_000008.jpg</filename>\n\t<size>\n"
    "\t\t<width>500</width>\n\t\t<height>442</height>\n\t\t<depth>3</depth>\n\t</size>\n"
    "\t<segmented>0</segmented>\n\t<object>\n\t\t<name>horse</name>\n\t\t<pose>Left</pose>\n"
    "\t\t<truncated>0</truncated>\n\t\t<difficult>1</difficult>\n\t\t<bndbox>\n"
    "\t\t\t<xmin>53</xmin>\n\t\t\t<ymin>87.5</ymin>\n\t\t\t<xmax>471</xmax>\n"
    "\t\t\t<ymax>420</ymax>\n\t\t</bndbox>\n\t</object>\n\t<object><name>dog</name>"
    "<bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>\n"
    "</annotation>\n",
    "\xEF\xBB\xBF<annotation><name>\xe4\xb8\xad\xe6\x96\x87 \xd0\x96</name></annotation>",
};

const std::vector<std::string> kFragments = {
    "<",
    ">",
    "</",
    "/>",
    "&",
    ";",
    "&amp;",
    "&#",
    "&#x",
    "]]>",
    "<![CDATA[",
    "<!--",
    "-->",
    "<?",
    "?>",
    "<!DOCTYPE a [",
    "<!ENTITY",
    "]>",
    "'",
    "\"",
    "=",
    "\r\n",
    "\xc3",
    "\xff",
    "\xed\xa0\x80",
    "<object>",
    "</object>",
    "<bndbox>",
    "<name>",
    "xmlns:p='u'",
    "p:",
};

std::string mutate(std::string input, std::mt19937_64& rng) {
  const int steps = 1 + static_cast<int>(rng() % 4);
  for (int s = 0; s < steps; ++s) {
    const std::size_t at = input.empty() ? 0 : rng() % (input.size() + 1);
    switch (rng() % 6) {
      case 0:
        if (!input.empty() && at < input.size()) input[at] = static_cast<char>(rng());
        break;
      case 1:
        input.insert(at, 1, static_cast<char>(rng()));
        break;
      case 2:
        if (at < input.size()) input.erase(at, 1 + rng() % 8);
        break;
      case 3:
        input.insert(at, kFragments[rng() % kFragments.size()]);
        break;
      case 4:
        if (at < input.size()) input.insert(at, input.substr(at, 1 + rng() % 32));
        break;
      default: {
        const std::string& other = kSeeds[rng() % kSeeds.size()];
        const std::size_t from = rng() % other.size();
        input.insert(at, other.substr(from, 1 + rng() % 64));
      }
    }
  }
  return input;
}

}  // namespace

TEST_CASE("fuzzing the XML and VOC readers finds no crash and no disagreement") {
  const double seconds = conveyor_test::fuzz_seconds();
  std::mt19937_64 rng(conveyor_test::fuzz_seed("test_voc_fuzz"));
  std::vector<std::string> corpus = kSeeds;
  const auto start = std::chrono::steady_clock::now();
  std::size_t runs = 0;
  for (const auto& seed : kSeeds)
    fuzz_voc_xml_one_input(reinterpret_cast<const std::uint8_t*>(seed.data()), seed.size());
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() <
         seconds) {
    for (int i = 0; i < 256; ++i, ++runs) {
      std::string input = mutate(corpus[rng() % corpus.size()], rng);
      if (input.size() > 8192) input.resize(8192);
      fuzz_voc_xml_one_input(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
      if (rng() % 64 == 0 && corpus.size() < 512) corpus.push_back(std::move(input));
    }
  }
  std::printf("fuzzed %zu inputs in %.1f s\n", runs, seconds);
  CHECK(runs > 0);
}

TEST_MAIN()
