#!/usr/bin/env bash
# Installs the Debian packages Yilian builds, tests and benchmarks with.
# Idempotent: only packages that are missing are installed.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git ca-certificates ccache clang-format clang libclang-rt-14-dev
  libdcmtk-dev dcmtk
  libwebsockets-dev libssl-dev
  libsqlite3-dev sqlite3 libpq-dev postgresql
  libopencv-dev libopenjp2-7-dev libxml2-dev
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev libtomlplusplus-dev libargon2-dev
  libxxhash-dev libcurl4-openssl-dev libzstd-dev
  libtiff-dev libopenslide-dev liblcms2-dev libjpeg-dev orthanc-wsi
  python3 python3-pydicom python3-hl7 python3-pil curl openssl
  chromium firefox-esr fonts-wqy-microhei poppler-utils zlib1g-dev
  orthanc
)
# The web front end is built with npm packages (viewer/web); a Node.js already installed (with
# its npm) is used as is.
command -v npm >/dev/null || PACKAGES+=(nodejs npm)
if [[ "${YILIAN_BENCH_DEPS:-0}" == "1" ]]; then
  PACKAGES+=(orthanc-dicomweb orthanc-postgresql haproxy)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
