// The pure check of a measurement as a viewer sends it.
#include "yilian/reading/measurements.h"

#include <gtest/gtest.h>

#include <limits>

namespace yilian::reading {
namespace {

Measurement length() {
  Measurement m;
  m.instance_uid = "1.2.3";
  m.kind = "length";
  m.points = {{2.5, 3}, {12.5, 3}};
  m.value = 7.5;
  m.unit = "mm";
  return m;
}

TEST(Measurements, a_length_has_two_points_in_mm_or_px_and_an_angle_three_in_degrees) {
  EXPECT_FALSE(measurement_problem(length()));
  Measurement px = length();
  px.unit = "px";
  EXPECT_FALSE(measurement_problem(px));
  Measurement angle = length();
  angle.kind = "angle";
  angle.points.push_back({20, 3});
  angle.unit = "deg";
  angle.value = 180;
  EXPECT_FALSE(measurement_problem(angle));
  angle.value = 180.5;
  EXPECT_EQ(measurement_problem(angle), "value is a number from 0 to 180");
  angle.value = 45;
  angle.unit = "mm";
  EXPECT_EQ(measurement_problem(angle), "an angle is in deg");
  angle.unit = "deg";
  angle.points.pop_back();
  EXPECT_EQ(measurement_problem(angle), "an angle has 3 points");
}

TEST(Measurements, points_outside_the_image_range_and_values_that_are_not_numbers_are_named) {
  Measurement m = length();
  m.kind = "area";
  EXPECT_EQ(measurement_problem(m), "kind is length or angle");
  m = length();
  m.unit = "deg";
  EXPECT_EQ(measurement_problem(m), "a length is in mm or px");
  m = length();
  m.points[1][0] = -0.5;
  EXPECT_TRUE(measurement_problem(m));
  m.points[1][0] = 65536;
  EXPECT_TRUE(measurement_problem(m));
  m.points[1][0] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(measurement_problem(m));
  m = length();
  m.value = std::numeric_limits<double>::infinity();
  EXPECT_TRUE(measurement_problem(m));
  m.value = -1;
  EXPECT_TRUE(measurement_problem(m));
  m = length();
  m.frame = 0;
  EXPECT_EQ(measurement_problem(m), "frame is 1-based");
}

}  // namespace
}  // namespace yilian::reading
