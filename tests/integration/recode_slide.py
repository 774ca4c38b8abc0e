#!/usr/bin/python3
"""Re-encodes the levels of a whole-slide series as other scanners and converters send them.

Usage: recode_slide.py MODE SOURCE_DIR OUT_DIR

Every VL Whole Slide Microscopy instance of SOURCE_DIR (JPEG baseline frames, as `yilian
pathology import` writes them) is written to OUT_DIR with its frames:
  j2k         JPEG 2000 lossless codestreams (1.2.840.10008.1.2.4.90), YBR_RCT;
  rgb         uncompressed RGB, colour-by-pixel (Explicit VR Little Endian);
  ybr-planar  uncompressed YBR_FULL, colour-by-plane (Planar Configuration 1).
The series gets a new Series Instance UID and each instance a new SOP Instance UID, derived
from the old ones, so the recoded series sits beside the original in the same study.
Prints the new Series Instance UID.
"""
import hashlib
import io
import pathlib
import sys

import pydicom
from pydicom.encaps import encapsulate, generate_pixel_data_frame
from PIL import Image

WSI = "1.2.840.10008.5.1.4.1.1.77.1.6"


def derived_uid(uid: str, mode: str) -> str:
    digest = int(hashlib.sha256((uid + mode).encode()).hexdigest()[:24], 16)
    return "2.25." + str(digest)


def frames_rgb(ds):
    n = int(getattr(ds, "NumberOfFrames", 1))
    for frame in generate_pixel_data_frame(ds.PixelData, n):
        yield Image.open(io.BytesIO(frame)).convert("RGB")


def ybr_full(img):
    """RGB -> YCbCr as DICOM YBR_FULL defines it (ITU-R BT.601, full range)."""
    return img.convert("YCbCr")


def main():
    mode, source, out = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    series = None
    for path in sorted(source.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        if ds.SOPClassUID != WSI:
            continue
        images = list(frames_rgb(ds))
        if mode == "j2k":
            encoded = []
            for img in images:
                buf = io.BytesIO()
                img.save(buf, format="JPEG2000", no_jp2=True, irreversible=False, mct=1)
                encoded.append(buf.getvalue())
            ds.PixelData = encapsulate(encoded, has_bot=True)
            ds["PixelData"].VR = "OB"
            ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.90"
            ds.PhotometricInterpretation = "YBR_RCT"
            ds.is_little_endian, ds.is_implicit_VR = True, False
        elif mode in ("rgb", "ybr-planar"):
            raw = bytearray()
            for img in images:
                if mode == "rgb":
                    raw += img.tobytes()
                else:
                    for band in ybr_full(img).split():
                        raw += band.tobytes()
            ds.PixelData = bytes(raw)
            ds["PixelData"].VR = "OB"
            ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
            ds.PhotometricInterpretation = "RGB" if mode == "rgb" else "YBR_FULL"
            ds.PlanarConfiguration = 0 if mode == "rgb" else 1
            if "LossyImageCompression" in ds:
                ds.LossyImageCompression = "01"  # decoded from JPEG: it was lossy once
            ds.is_little_endian, ds.is_implicit_VR = True, False
        else:
            sys.exit("mode: j2k, rgb or ybr-planar")
        ds.SeriesInstanceUID = derived_uid(ds.SeriesInstanceUID, mode)
        ds.SOPInstanceUID = derived_uid(ds.SOPInstanceUID, mode)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        series = ds.SeriesInstanceUID
        ds.save_as(out / path.name, write_like_original=False)
    if series is None:
        sys.exit("no whole-slide instances in " + str(source))
    print(series)


if __name__ == "__main__":
    main()
