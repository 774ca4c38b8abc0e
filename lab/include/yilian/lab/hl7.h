// HL7 version 2 messages as county and township laboratory systems send them: the parser of
// the pipe-and-hat text, the laboratory result (ORU^R01) read out of it, and the
// acknowledgement (ACK) the hub answers with. Pure: no I/O.
//
// What the hub accepts: one ORU^R01 per message, MSH-11 processing id P (production) or T
// (training), version 2.3 to 2.8; the sending facility (MSH-4) names the member institution;
// PID-3 the patient; one or more OBR (the order, its specimen time in OBR-7) each followed by
// its OBX results. The character set comes from MSH-18 ("UNICODE UTF-8", "GB 18030-2000",
// "8859/1", "ASCII"); none declared: the sender's configured one, as for DICOM.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "yilian/common/result.h"

namespace yilian::lab {

inline constexpr std::size_t kMaxMessageBytes = 1u << 20;  // one ORU; bigger is refused
inline constexpr std::size_t kMaxSegments = 5000;

// One segment: its fields as sent (still escaped), fields[0] the segment's name. In MSH,
// fields[1] is MSH-1 (the field separator) and fields[n] is MSH-n, as in every other segment.
struct Segment {
  std::vector<std::string> fields;
  std::string_view name() const { return fields.empty() ? std::string_view() : fields[0]; }
};

struct Message {
  char field = '|', component = '^', repetition = '~', escape = '\\', subcomponent = '&';
  std::vector<Segment> segments;  // views into `text`

  // Field `n` of the first segment `name`, component `c` (1-based), first repetition,
  // unescaped; "" when absent.
  std::string get(std::string_view name, std::size_t n, std::size_t c = 1) const;
  std::string get(const Segment& s, std::size_t n, std::size_t c = 1) const;
  const Segment* find(std::string_view name) const;
};

// An error the acknowledgement reports: AR (the message cannot be processed: not HL7, not an
// ORU^R01, a version or processing id not accepted, an unknown sender) or AE (its content is
// wrong: a required field missing, a bad value, an unknown patient). `code` is from HL7 table
// 0357 (101 required field missing, 102 data type error, 103 table value not found, 200
// unsupported message type, 202 unsupported processing id, 203 unsupported version id, 204
// unknown key identifier, 207 application internal error); `location` is an HL7 error
// location (ERR-2: segment^sequence^field, "OBX^3^5"), "" for the message as a whole.
struct Hl7Error {
  std::string ack = "AE";
  int code = 207;
  std::string location;
  std::string text;
};

// The segments of `bytes` (CR, LF or CRLF between segments). Refuses what does not start with
// MSH, has separators that are not five distinct printable characters, exceeds the limits.
std::variant<Message, Hl7Error> parse(std::string_view bytes);

// One result (OBX) with its order (OBR) and the message's patient.
struct Observation {
  std::string order_code, order_name;         // OBR-4
  std::string specimen_time;                  // OBR-7, ISO 8601 UTC ("" when not sent)
  std::string code, code_name, code_system;   // OBX-3: identifier, text, system (LN = LOINC)
  std::string alt_code, alt_system;           // OBX-3's alternate identifier and system
  std::string value_type;                     // OBX-2: NM, ST, TX, CE, CWE, SN
  std::string value;                          // OBX-5 as text (UTF-8)
  std::optional<double> numeric;              // NM (and a plain SN) values
  std::string units, reference_range, flags;  // OBX-6, -7, -8 (repetitions joined by ~)
  std::string status;                         // OBX-11: F, C, P, ...
  std::string observed_time;                  // OBX-14, ISO 8601 UTC
  std::string performing_lab;                 // OBX-23 (XON-1), else the sending facility
};

struct OruReport {
  std::string control_id;                     // MSH-10
  std::string sending_app, sending_facility;  // MSH-3, MSH-4
  std::string charset;                        // MSH-18 as sent
  std::string patient_id;                     // PID-3 (CX-1 of the first repetition)
  std::string patient_name;                   // PID-5, "Family^Given" as sent
  std::vector<Observation> observations;
};

// Text decoding of the message's values: raw bytes (after unescaping) and MSH-18 -> UTF-8,
// nullopt when the bytes are not text in that character set. Empty: UTF-8 only.
using Decode =
    std::function<std::optional<std::string>(std::string_view raw, std::string_view declared)>;

// The laboratory report in `m`: the MSH checks (AR) and the content checks (AE). Times
// without a zone are `utc_offset_minutes` ahead of UTC (China Standard Time: +480).
std::variant<OruReport, Hl7Error> read_oru(const Message& m, int utc_offset_minutes = 480,
                                           const Decode& decode = {});

// An HL7 time stamp (YYYY[MM[DD[HH[MM[SS[.S...]]]]]][+/-ZZZZ]) in ISO 8601 UTC with
// milliseconds; nullopt when it is not one. A date alone is midnight local time.
std::optional<std::string> hl7_time(std::string_view ts, int utc_offset_minutes);

// The acknowledgement of the message whose MSH is `msh` (nullptr: none could be read): MSA-1
// `code` (AA, AE, AR), MSA-2 the message's control id, ERR for an error. `control_id` is the
// acknowledgement's own MSH-10; `now` its MSH-7 (an HL7 time stamp).
std::string make_ack(const Message* msh, std::string_view code, const Hl7Error* error,
                     std::string_view text, std::string_view control_id, std::string_view now);

// Text for an HL7 field: the separators escaped.
std::string escape(std::string_view text);

}  // namespace yilian::lab
