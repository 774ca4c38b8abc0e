// Query/retrieve over the index for the DICOM services (C-FIND, C-MOVE, C-GET): what an
// identifier matches, limited to what the asking node may see. No networking here.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "yilian/common/principal.h"
#include "yilian/common/result.h"
#include "yilian/pacs/index.h"
#include "yilian/storage/clock.h"

class DcmDataset;

namespace yilian::pacs {

// PS3.4 C.4.1: at most this many C-FIND matches are returned for one request.
inline constexpr std::size_t kMaxFindMatches = 5000;

// '*' any run, '?' one character, '\' separates alternatives (UID lists); an empty pattern
// matches everything.
bool dicom_match(const std::string& pattern, const std::string& value);

class QueryRetrieve {
 public:
  QueryRetrieve(pacs::Index& index, storage::Clock clock)
      : index_(index), clock_(std::move(clock)) {}

  // C-FIND: one response identifier per match, holding the keys the request asked for.
  // `patient_root`: the Patient Root model (else Study Root). Errors: invalid_argument (a
  // missing or wrong Query/Retrieve Level, or a unique key missing above the level).
  Result<std::vector<std::unique_ptr<DcmDataset>>> find(const Principal& p, bool patient_root,
                                                        const DcmDataset& identifier);

  // C-MOVE / C-GET: the instances the identifier names that `p` may read.
  Result<std::vector<pacs::InstanceLocation>> instances(const Principal& p,
                                                        const DcmDataset& identifier);

 private:
  std::string now() const;
  Result<std::vector<pacs::InstanceLocation>> study_instances(const std::string& study);

  pacs::Index& index_;
  storage::Clock clock_;
};

}  // namespace yilian::pacs
