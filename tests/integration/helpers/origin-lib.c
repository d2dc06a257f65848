/* SPDX-License-Identifier: GPL-2.0-or-later */
const char *planted(void);

__attribute__((visibility("default"))) const char *planted(void) {
        return "PLANTED LIBRARY LOADED";
}
