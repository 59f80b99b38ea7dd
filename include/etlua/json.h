/* json.h: the JSON codec (etlua.json) and the number formatting it shares with the Postgres path.
 * The Lua module is what the host uses (its json.number_text gives etlua.rows the Postgres text of
 * a number); the C functions below are that formatting and the encoder's (src/json.c,
 * src/json_encode.c), declared here for tests/c/test_json.c. Why a codec of our own: see the
 * header of src/json.c. */
#ifndef ETLUA_JSON_H
#define ETLUA_JSON_H

#include <stddef.h>

#define ETL_JSON_MAX_DEPTH 1000 /* arrays/objects nested deeper are refused (decode and encode) */
#define ETL_JSON_NUMBER_MAX 32  /* room for any text below, NUL included */

/* The Postgres text of a float: "NaN", "Infinity", "-Infinity"; an integral value within the
 * signed 64-bit range as plain digits ("2", "-0", "9007199254740992"), which an integer column
 * accepts; any other value as the shortest of %.15g, %.16g, %.17g that reads back as the same
 * double ("0.1", "1e+300"). Locale-independent ('.' is the decimal point). Returns the length. */
int etl_json_number_text(double x, char out[ETL_JSON_NUMBER_MAX]);

/* The JSON text of a finite float: the shortest of %.15g, %.16g, %.17g that reads back as the
 * same double, with ".0" appended when that text would read as an integer ("2.0", "-0.0",
 * "1e+15", "0.1"), so that a float decodes as a float again. Returns the length; x must be
 * finite (the encoder writes null for inf and nan). */
int etl_json_float_text(double x, char out[ETL_JSON_NUMBER_MAX]);

#endif
