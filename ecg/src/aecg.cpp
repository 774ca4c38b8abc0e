#include "yilian/ecg/aecg.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>

#include "yilian/ecg/analysis.h"

namespace yilian::ecg {
namespace {

Error bad(const std::string& what) { return make_error(Errc::invalid_argument, "aECG: " + what); }

bool is(const xmlNode* n, const char* name) {
  return n && n->type == XML_ELEMENT_NODE &&
         std::strcmp(reinterpret_cast<const char*>(n->name), name) == 0;
}

const xmlNode* child(const xmlNode* n, const char* name) {
  for (const xmlNode* c = n ? n->children : nullptr; c; c = c->next) {
    if (is(c, name)) return c;
  }
  return nullptr;
}

std::string attr(const xmlNode* n, const char* name) {
  if (!n) return {};
  xmlChar* v = xmlGetProp(n, reinterpret_cast<const xmlChar*>(name));
  if (!v) return {};
  std::string s(reinterpret_cast<const char*>(v));
  xmlFree(v);
  return s;
}

std::string content(const xmlNode* n) {
  if (!n) return {};
  xmlChar* v = xmlNodeGetContent(n);
  if (!v) return {};
  std::string s(reinterpret_cast<const char*>(v));
  xmlFree(v);
  return s;
}

double unit_mv(const std::string& unit) {
  if (unit == "uV") return 0.001;
  if (unit == "V") return 1000;
  return 1;
}

struct DocDeleter {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};

}  // namespace

Result<Record> parse_aecg(std::string_view xml) {
  if (xml.size() > kMaxAecgBytes) {
    return bad("document larger than " + std::to_string(kMaxAecgBytes >> 20) + " MiB");
  }
  // No network, no DTD loading, no entity substitution, libxml2's default size limits.
  std::unique_ptr<xmlDoc, DocDeleter> doc(
      xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "aecg.xml", nullptr,
                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING));
  if (!doc) return bad("not well-formed XML");
  // An aECG has no document type declaration; one that brings its own can only be declaring
  // entities, whose expansion turns a few hundred bytes into gigabytes.
  if (doc->intSubset || doc->extSubset) return bad("a document type declaration is not allowed");
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  if (!is(root, "AnnotatedECG")) return bad("the document is not an AnnotatedECG");
  Record r;
  r.id = attr(child(root, "id"), "root");
  // The first series coded RHYTHM (or the first series at all).
  const xmlNode* series = nullptr;
  for (const xmlNode* c = root->children; c; c = c->next) {
    const xmlNode* s = is(c, "component") ? child(c, "series") : nullptr;
    if (!s) continue;
    if (!series) series = s;
    if (attr(child(s, "code"), "code") == "RHYTHM") {
      series = s;
      break;
    }
  }
  const xmlNode* set = series ? child(child(series, "component"), "sequenceSet") : nullptr;
  if (!set) return bad("no rhythm series with a sequence set");
  double increment = 0;
  for (const xmlNode* c = set->children; c; c = c->next) {
    const xmlNode* seq = is(c, "component") ? child(c, "sequence") : nullptr;
    if (!seq) continue;
    const std::string code = attr(child(seq, "code"), "code");
    const xmlNode* value = child(seq, "value");
    if (code.rfind("TIME_", 0) == 0) {
      const xmlNode* inc = child(value, "increment");
      increment = std::atof(attr(inc, "value").c_str());
      if (attr(inc, "unit") == "ms") increment /= 1000;
      continue;
    }
    if (code.rfind("MDC_ECG_LEAD_", 0) != 0) continue;
    const xmlNode* origin = child(value, "origin");
    const xmlNode* scale = child(value, "scale");
    const double o = std::atof(attr(origin, "value").c_str()) * unit_mv(attr(origin, "unit"));
    const double k = (scale ? std::atof(attr(scale, "value").c_str()) : 1.0) *
                     unit_mv(scale ? attr(scale, "unit") : "uV");
    if (r.leads.size() >= kMaxAecgLeads) return bad("more leads than an ECG has");
    Lead lead;
    lead.name = standard_lead_name(code.substr(13));
    std::istringstream digits(content(child(value, "digits")));
    double d = 0;
    while (digits >> d) {
      if (lead.mv.size() >= kMaxAecgSamplesPerLead)
        return bad("lead " + lead.name + " is too long");
      lead.mv.push_back(static_cast<float>(o + k * d));
    }
    if (lead.mv.empty()) return bad("lead " + lead.name + " has no samples");
    r.leads.push_back(std::move(lead));
  }
  if (increment <= 0) return bad("the sequence set has no time increment");
  r.sampling_hz = 1.0 / increment;
  if (!(r.sampling_hz >= 50 && r.sampling_hz <= 20000))
    return bad("impossible sampling rate " + std::to_string(r.sampling_hz) + " Hz");
  if (r.leads.empty()) return bad("no leads in the rhythm series");
  for (const Lead& l : r.leads) {
    if (l.mv.size() != r.leads.front().mv.size()) return bad("leads of different lengths");
  }
  return r;
}

Result<Record> read_aecg(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error(Errc::not_found, "cannot open " + file.string());
  std::string xml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_aecg(xml);
}

}  // namespace yilian::ecg
