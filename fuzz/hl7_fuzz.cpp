// What a laboratory system (or anyone reaching the MLLP port) sends the hub: MLLP frames of
// HL7 v2. Every frame is parsed and read as an ORU^R01; whatever the bytes, the acknowledgement
// built for them parses again as an ACK answering with the same code.
#include <cstdint>
#include <string>
#include <variant>

#include "yilian/lab/hl7.h"
#include "yilian/lab/mllp.h"

namespace {

void check_ack(const yilian::lab::Message* m, const yilian::lab::Hl7Error* e, const char* code) {
  const std::string ack = yilian::lab::make_ack(m, code, e, e ? e->text : "ok", "F1", "20261205");
  auto again = yilian::lab::parse(ack);
  const auto* a = std::get_if<yilian::lab::Message>(&again);
  if (!a || a->get("MSA", 1) != code) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  yilian::lab::MllpDecoder decoder(64 * 1024);
  auto frames = decoder.feed(bytes);
  frames.push_back(bytes);  // the bytes as one message, too
  for (const std::string& frame : frames) {
    auto parsed = yilian::lab::parse(frame);
    if (auto* e = std::get_if<yilian::lab::Hl7Error>(&parsed)) {
      check_ack(nullptr, e, e->ack.c_str());
      continue;
    }
    const auto& m = std::get<yilian::lab::Message>(parsed);
    auto report = yilian::lab::read_oru(m);
    if (auto* e = std::get_if<yilian::lab::Hl7Error>(&report)) {
      check_ack(&m, e, e->ack.c_str());
    } else {
      check_ack(&m, nullptr, "AA");
    }
  }
  return 0;
}
