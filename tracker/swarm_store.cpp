// Names of the store contract's values (for logs and /stats); the contract itself is the header.
#include "tracker/swarm_store.hpp"

namespace ringtracker::tracker {

std::string_view to_string(StoreError e) {
  switch (e) {
    case StoreError::torrents_full:
      return "torrents_full";
    case StoreError::peers_full:
      return "peers_full";
  }
  return "unknown";
}

}  // namespace ringtracker::tracker
