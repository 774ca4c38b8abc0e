#include "yilian/ecg/dicom_waveform.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcsequen.h>
#include <dcmtk/dcmdata/dcuid.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "yilian/ecg/analysis.h"

namespace yilian::ecg {
namespace {

Error bad(const std::string& what) { return make_error(Errc::invalid_argument, what); }

std::string text(DcmItem& item, const DcmTagKey& tag) {
  OFString v;
  if (item.findAndGetOFString(tag, v).bad()) return {};
  std::string s = v.c_str();
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

double number(DcmItem& item, const DcmTagKey& tag, double fallback) {
  Float64 v = 0;
  return item.findAndGetFloat64(tag, v).good() ? v : fallback;
}

// "Lead I (Einthoven)", "Lead aVR", "Lead V1" -> "I", "aVR", "V1".
std::string lead_name(const std::string& meaning, std::size_t index) {
  std::string s = meaning;
  if (s.rfind("Lead ", 0) == 0) s = s.substr(5);
  if (auto p = s.find(" ("); p != std::string::npos) s = s.substr(0, p);
  if (s.empty()) return "channel" + std::to_string(index + 1);
  return standard_lead_name(s);
}

// Millivolts per unit of a channel's sensitivity.
double to_millivolts(const std::string& unit) {
  if (unit == "uV") return 0.001;
  if (unit == "V") return 1000;
  return 1;  // mV
}

}  // namespace

Result<Record> read_dicom_waveform(const std::filesystem::path& file) {
  DcmFileFormat ff;
  if (OFCondition c = ff.loadFile(file.c_str()); c.bad())
    return make_error(Errc::io, std::string("cannot read ") + file.string() + ": " + c.text());
  DcmDataset& ds = *ff.getDataset();
  DcmSequenceOfItems* groups = nullptr;
  if (ds.findAndGetSequence(DCM_WaveformSequence, groups).bad() || !groups || groups->card() == 0)
    return bad("the object has no waveform sequence");
  DcmItem* group = groups->getItem(0);
  for (unsigned long i = 0; i < groups->card(); ++i) {
    if (text(*groups->getItem(i), DCM_MultiplexGroupLabel) == "RHYTHM") group = groups->getItem(i);
  }
  Uint16 channels = 0, bits = 0;
  Uint32 samples = 0;
  (void)group->findAndGetUint16(DCM_NumberOfWaveformChannels, channels);
  (void)group->findAndGetUint32(DCM_NumberOfWaveformSamples, samples);
  (void)group->findAndGetUint16(DCM_WaveformBitsAllocated, bits);
  const std::string interpretation = text(*group, DCM_WaveformSampleInterpretation);
  Record r;
  r.id = text(ds, DCM_SOPInstanceUID);
  const std::string sex = text(ds, DCM_PatientSex);
  if (sex == "M" || sex == "F") r.patient.sex = sex[0];
  const std::string age = text(ds, DCM_PatientAge);  // "056Y"
  if (age.size() == 4 && age[3] == 'Y') r.patient.age = std::atoi(age.substr(0, 3).c_str());
  r.sampling_hz = number(*group, DCM_SamplingFrequency, 0);
  if (!(r.sampling_hz >= 50 && r.sampling_hz <= 20000))
    return bad("impossible sampling frequency " + std::to_string(r.sampling_hz) + " Hz");
  if (channels == 0 || samples == 0) return bad("the waveform has no channels or no samples");
  if (!((bits == 16 && (interpretation == "SS" || interpretation == "US")) ||
        (bits == 8 && (interpretation == "SB" || interpretation == "UB"))))
    return bad("waveform sample interpretation " + interpretation + " with " +
               std::to_string(bits) + " bits is not supported");
  DcmSequenceOfItems* defs = nullptr;
  if (group->findAndGetSequence(DCM_ChannelDefinitionSequence, defs).bad() || !defs ||
      defs->card() != channels)
    return bad("the channel definitions do not match the number of channels");
  DcmElement* data = nullptr;
  if (group->findAndGetElement(DCM_WaveformData, data).bad() || !data)
    return bad("the waveform has no data");
  const std::size_t expected = static_cast<std::size_t>(channels) * samples * (bits / 8);
  if (data->getLength() < expected)
    return bad("the waveform data is truncated (" + std::to_string(data->getLength()) + " of " +
               std::to_string(expected) + " bytes)");
  const Uint8* bytes = nullptr;
  Uint16* words = nullptr;
  if (bits == 16) {
    if (data->getUint16Array(words).bad() || !words) return bad("the waveform data cannot be read");
  } else {
    Uint8* b = nullptr;
    if (data->getUint8Array(b).bad() || !b) return bad("the waveform data cannot be read");
    bytes = b;
  }
  for (Uint16 c = 0; c < channels; ++c) {
    DcmItem* def = defs->getItem(c);
    DcmSequenceOfItems* src = nullptr;
    std::string meaning;
    if (def->findAndGetSequence(DCM_ChannelSourceSequence, src).good() && src && src->card() > 0)
      meaning = text(*src->getItem(0), DCM_CodeMeaning);
    std::string unit = "mV";
    DcmSequenceOfItems* units = nullptr;
    if (def->findAndGetSequence(DCM_ChannelSensitivityUnitsSequence, units).good() && units &&
        units->card() > 0)
      unit = text(*units->getItem(0), DCM_CodeValue);
    const double sensitivity = number(*def, DCM_ChannelSensitivity, 1) *
                               number(*def, DCM_ChannelSensitivityCorrectionFactor, 1) *
                               to_millivolts(unit);
    const double baseline = number(*def, DCM_ChannelBaseline, 0);
    Lead lead;
    lead.name = lead_name(meaning, c);
    lead.mv.resize(samples);
    Float64 f = 0;
    if (def->findAndGetFloat64(DCM_FilterLowFrequency, f).good()) lead.filter_low_hz = f;
    if (def->findAndGetFloat64(DCM_FilterHighFrequency, f).good()) lead.filter_high_hz = f;
    if (def->findAndGetFloat64(DCM_NotchFilterFrequency, f).good() && f > 0) lead.notch_hz = f;
    for (Uint32 k = 0; k < samples; ++k) {
      const std::size_t at = static_cast<std::size_t>(k) * channels + c;
      double v = 0;
      if (bits == 16) {
        v = interpretation == "SS" ? static_cast<double>(static_cast<Sint16>(words[at]))
                                   : words[at];
      } else {
        v = interpretation == "SB" ? static_cast<double>(static_cast<Sint8>(bytes[at])) : bytes[at];
      }
      lead.mv[k] = static_cast<float>((v + baseline) * sensitivity);
    }
    r.leads.push_back(std::move(lead));
  }
  return r;
}

Status write_dicom_waveform(const Record& record, const DicomEcgIdentity& id,
                            const std::filesystem::path& file) {
  static const std::map<std::string, std::pair<const char*, const char*>> kScp = {
      {"I", {"5.6.3-9-1", "Lead I"}},      {"II", {"5.6.3-9-2", "Lead II"}},
      {"III", {"5.6.3-9-61", "Lead III"}}, {"aVR", {"5.6.3-9-62", "Lead aVR"}},
      {"aVL", {"5.6.3-9-63", "Lead aVL"}}, {"aVF", {"5.6.3-9-64", "Lead aVF"}},
      {"V1", {"5.6.3-9-3", "Lead V1"}},    {"V2", {"5.6.3-9-4", "Lead V2"}},
      {"V3", {"5.6.3-9-5", "Lead V3"}},    {"V4", {"5.6.3-9-6", "Lead V4"}},
      {"V5", {"5.6.3-9-7", "Lead V5"}},    {"V6", {"5.6.3-9-8", "Lead V6"}}};
  const std::size_t channels = record.leads.size(), samples = record.samples();
  if (channels == 0 || samples == 0 || channels > 0xFFFF)
    return bad("nothing to write: no leads or no samples");
  bool twelve = channels == 12;
  for (const Lead& l : record.leads) {
    if (l.mv.size() != samples) return bad("leads of different lengths");
    twelve = twelve && kScp.count(standard_lead_name(l.name));
  }
  DcmFileFormat ff;
  DcmDataset& ds = *ff.getDataset();
  auto put = [&](const DcmTagKey& tag, const std::string& v) {
    ds.putAndInsertString(tag, v.c_str());
  };
  put(DCM_SOPClassUID, twelve ? UID_TwelveLeadECGWaveformStorage : UID_GeneralECGWaveformStorage);
  put(DCM_SOPInstanceUID, id.sop_uid);
  put(DCM_StudyInstanceUID, id.study_uid);
  put(DCM_SeriesInstanceUID, id.series_uid);
  put(DCM_Modality, "ECG");
  put(DCM_PatientID, id.patient_id);
  put(DCM_PatientName, id.patient_name);
  if (record.patient.sex != 'U') put(DCM_PatientSex, std::string(1, record.patient.sex));
  if (record.patient.age) {
    char age[8];
    std::snprintf(age, sizeof age, "%03dY", std::clamp(*record.patient.age, 0, 999));
    put(DCM_PatientAge, age);
  }
  put(DCM_StudyDate, id.study_date);
  put(DCM_StudyTime, id.study_time);
  put(DCM_InstitutionName, id.institution_name);
  put(DCM_SeriesNumber, "1");
  put(DCM_InstanceNumber, "1");
  put(DCM_SpecificCharacterSet, "ISO_IR 192");
  DcmItem* group = nullptr;
  if (ds.findOrCreateSequenceItem(DCM_WaveformSequence, group, 0).bad() || !group)
    return make_error(Errc::internal, "cannot build the waveform sequence");
  group->putAndInsertString(DCM_MultiplexGroupLabel, "RHYTHM");
  group->putAndInsertString(DCM_WaveformOriginality, "ORIGINAL");
  group->putAndInsertUint16(DCM_NumberOfWaveformChannels, static_cast<Uint16>(channels));
  group->putAndInsertUint32(DCM_NumberOfWaveformSamples, static_cast<Uint32>(samples));
  group->putAndInsertString(DCM_SamplingFrequency, std::to_string(record.sampling_hz).c_str());
  group->putAndInsertUint16(DCM_WaveformBitsAllocated, 16);
  group->putAndInsertString(DCM_WaveformSampleInterpretation, "SS");
  for (std::size_t c = 0; c < channels; ++c) {
    DcmItem* def = nullptr;
    if (group->findOrCreateSequenceItem(DCM_ChannelDefinitionSequence, def, static_cast<long>(c))
            .bad() ||
        !def)
      return make_error(Errc::internal, "cannot build the channel definitions");
    const std::string name = standard_lead_name(record.leads[c].name);
    DcmItem* src = nullptr;
    def->findOrCreateSequenceItem(DCM_ChannelSourceSequence, src, 0);
    if (auto it = kScp.find(name); it != kScp.end()) {
      src->putAndInsertString(DCM_CodeValue, it->second.first);
      src->putAndInsertString(DCM_CodingSchemeDesignator, "SCPECG");
      src->putAndInsertString(DCM_CodeMeaning, it->second.second);
    } else {
      src->putAndInsertString(DCM_CodeValue, name.c_str());
      src->putAndInsertString(DCM_CodingSchemeDesignator, "99YILIAN");
      src->putAndInsertString(DCM_CodeMeaning, name.c_str());
    }
    def->putAndInsertString(DCM_ChannelSensitivity, "1");
    DcmItem* unit = nullptr;
    def->findOrCreateSequenceItem(DCM_ChannelSensitivityUnitsSequence, unit, 0);
    unit->putAndInsertString(DCM_CodeValue, "uV");
    unit->putAndInsertString(DCM_CodingSchemeDesignator, "UCUM");
    unit->putAndInsertString(DCM_CodeMeaning, "microvolt");
    def->putAndInsertString(DCM_ChannelSensitivityCorrectionFactor, "1");
    def->putAndInsertString(DCM_ChannelBaseline, "0");
    def->putAndInsertString(DCM_ChannelSampleSkew, "0");
    def->putAndInsertUint16(DCM_WaveformBitsStored, 16);
    auto put_hz = [def](const DcmTagKey& tag, const std::optional<double>& hz) {
      if (!hz) return;
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.6g", *hz);
      def->putAndInsertString(tag, buf);
    };
    put_hz(DCM_FilterLowFrequency, record.leads[c].filter_low_hz);
    put_hz(DCM_FilterHighFrequency, record.leads[c].filter_high_hz);
    put_hz(DCM_NotchFilterFrequency, record.leads[c].notch_hz);
  }
  std::vector<Uint16> data(channels * samples);
  for (std::size_t k = 0; k < samples; ++k) {
    for (std::size_t c = 0; c < channels; ++c) {
      const double uv = std::clamp(std::round(record.leads[c].mv[k] * 1000.0), -32768.0, 32767.0);
      data[k * channels + c] = static_cast<Uint16>(static_cast<Sint16>(uv));
    }
  }
  if (group
          ->putAndInsertUint16Array(DCM_WaveformData, data.data(),
                                    static_cast<unsigned long>(data.size()))
          .bad())
    return make_error(Errc::internal, "cannot hold the waveform data");
  if (OFCondition c = ff.saveFile(file.c_str(), EXS_LittleEndianExplicit); c.bad())
    return make_error(Errc::io, std::string("cannot write ") + file.string() + ": " + c.text());
  return Status::Ok();
}

}  // namespace yilian::ecg
