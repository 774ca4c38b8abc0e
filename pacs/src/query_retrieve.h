// Query/retrieve over the index for the DICOM services (C-FIND, C-MOVE, C-GET): what an
// identifier matches, limited to what the asking node may see. No networking here.
#pragma once

#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "yilian/common/principal.h"
#include "yilian/common/result.h"
#include "yilian/pacs/index.h"
#include "yilian/storage/clock.h"

class DcmDataset;

namespace yilian::pacs {

// PS3.4 C.4.1: at most this many C-FIND matches are returned for one request by default
// (`[dicom] max_find_matches`).
inline constexpr std::size_t kDefaultMaxFindMatches = 5000;

// The instances of `study` series by series (of its series `series` only, when given), at most
// `limit`. No access check: callers have made theirs.
Result<std::vector<pacs::InstanceLocation>> study_instances(
    pacs::Index& index, const std::string& study, const std::string& series = {},
    std::size_t limit = std::numeric_limits<std::size_t>::max());

// '*' any run, '?' one character, '\' separates alternatives (UID lists); an empty pattern
// matches everything.
bool dicom_match(const std::string& pattern, const std::string& value);

class QueryRetrieve {
 public:
  QueryRetrieve(pacs::Index& index, storage::Clock clock,
                std::size_t max_matches = kDefaultMaxFindMatches)
      : index_(index), clock_(std::move(clock)), max_matches_(max_matches) {}

  // C-FIND: one response identifier per match, holding the keys the request asked for (those
  // of the File Meta group and the command group are not echoed); at most `max_matches`, and
  // `cut` when there were more. `patient_root`: the Patient Root model (else Study Root).
  // Errors: invalid_argument (a missing or wrong Query/Retrieve Level, or a unique key missing
  // above the level).
  struct Found {
    std::vector<std::unique_ptr<DcmDataset>> matches;
    bool cut = false;
  };
  Result<Found> find(const Principal& p, bool patient_root, const DcmDataset& identifier);
  std::size_t max_matches() const { return max_matches_; }

  // C-MOVE / C-GET: the instances the identifier names that `p` may read.
  Result<std::vector<pacs::InstanceLocation>> instances(const Principal& p,
                                                        const DcmDataset& identifier);

 private:
  std::string now() const;

  pacs::Index& index_;
  storage::Clock clock_;
  std::size_t max_matches_;
};

}  // namespace yilian::pacs
