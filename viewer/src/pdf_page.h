// A one-page PDF holding one image at a given physical size: printed at "actual size" it keeps
// that size (an ECG page stays at 25 mm/s and 10 mm/mV). Pure: pixels in, bytes out.
#pragma once

#include <string>
#include <string_view>

namespace yilian::viewer {

// `rgb`: width*height*3 bytes, rows top to bottom. The page is the image's size at
// `px_per_mm`; the pixels are stored losslessly (Flate). `title` goes into the document
// information (UTF-8; written as UTF-16BE).
std::string image_pdf(const unsigned char* rgb, int width, int height, double px_per_mm,
                      std::string_view title);

}  // namespace yilian::viewer
