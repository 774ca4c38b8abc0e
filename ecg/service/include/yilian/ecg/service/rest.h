// ECG uploads and results:
//   POST /api/ecg?patientId=&patientName=&age=&sex=   an HL7 aECG (application/xml) becomes a
//                 DICOM 12-lead ECG; a DICOM ECG (application/dicom) is stored as sent; both go
//                 through the same ingest as C-STORE (and so the ECG pipeline and the queue)
//   GET /api/ecg/{instance}                  measurements and flags (JSON)
//   GET /api/ecg/{instance}/render?layout=3x4+II   the 12-lead page (PNG, 25 mm/s, 10 mm/mV);
//                 once the ECG's reading task has a final report, with what the reader signed
// {instance} is the SOP Instance UID of a stored DICOM ECG waveform. The study access rules
// apply (404 for a hidden or missing one); every read is audited. Results are computed on
// first request and kept in the derived-data cache.
#pragma once

#include "yilian/identity/auth.h"
#include "yilian/net/http.h"
#include "yilian/pacs/index.h"
#include "yilian/pacs/ingest.h"
#include "yilian/reading/queue_store.h"
#include "yilian/storage/blob_store.h"
#include "yilian/storage/disk_cache.h"

#include "yilian/ecg/record.h"

namespace yilian::ecg {
struct Analysis;
}  // namespace yilian::ecg

namespace yilian::ecg::service {

// The analysis of one stored ECG as the API returns it (JSON text), and its cache key.
std::string ecg_analysis_json(const std::string& sop_instance_uid, const ecg::Record& record,
                              const ecg::Analysis& analysis);
std::string ecg_analysis_cache_key(const std::string& sop_instance_uid);

// An ECG uploaded as XML or WFDB is filed with the upload time as its Study Date and Time, in
// local time `utc_offset_minutes` ahead of UTC (DICOM dates and times are local).
void register_ecg_routes(http::Router& router, pacs::Index& index, storage::BlobStore& blobs,
                         pacs::Ingestor& ingestor, identity::AuthService& auth,
                         storage::DiskCache& cache, reading::QueueStore& reports,
                         int utc_offset_minutes = 480);

}  // namespace yilian::ecg::service
