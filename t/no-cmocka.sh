# SPDX-License-Identifier: ISC
# Stands in for the C unit tests when configure did not find cmocka.
echo "FAIL: the unit tests need cmocka: install the Debian package libcmocka-dev"
echo "      (apt-get install libcmocka-dev), then run ./configure again"
exit 1
