// QIDO-RS query parameters (study level) and the Accept and Range headers.
#include <cstdint>
#include <string>

#include "dicomweb_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  yilian::http::Request req;
  // key=value lines become query parameters.
  std::size_t pos = 0;
  while (pos < input.size()) {
    std::size_t nl = input.find('\n', pos);
    std::string line = input.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? input.size() : nl + 1;
    std::size_t eq = line.find('=');
    if (eq != std::string::npos) req.query[line.substr(0, eq)] = line.substr(eq + 1);
  }
  yilian::pacs::StudyQuery q;
  (void)yilian::pacs::web::study_query(req, q);
  (void)yilian::pacs::web::parse_accept(input);
  (void)yilian::pacs::web::parse_range(input, 1u << 20);
  return 0;
}
