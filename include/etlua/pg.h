/* pg.h: the etlua.pg module (libpq connection handle, parameterised exec, COPY of row arrays in
 * COPY's binary or text format), the C API for array parameters a C module holds in C arrays
 * (etl_pg_push_int_array, etl_pg_push_char_array: src/ledger_entries.c's), and the pure
 * functions behind them exposed for unit tests (COPY text escaping, binary arrays and rows). */
#ifndef ETLUA_PG_H
#define ETLUA_PG_H

#include <stddef.h>
#include <stdint.h>

struct lua_State;

/* Returned by etl_pg_copy_escape when the value holds a NUL byte, which COPY text cannot carry. */
#define ETL_PG_ESCAPE_NUL ((size_t)-1)

/* Escapes len bytes of src for one field of COPY text format into dst (backslash, tab, newline,
 * carriage return become \\, \t, \n, \r; every other byte is copied). dst must hold 2 * len
 * bytes; nothing is NUL-terminated. Returns the number of bytes written, or ETL_PG_ESCAPE_NUL
 * (dst untouched) when src contains a NUL byte. */
size_t etl_pg_copy_escape(char *dst, const char *src, size_t len);

/* Replaces every occurrence of secret (when non-empty) in msg by "***", writing at most cap bytes
 * (NUL-terminated) into out. Used on libpq connection errors. Returns out. */
char *etl_pg_redact(char *out, size_t cap, const char *msg, const char *secret);

/* Pushes the binary form (array_send's layout) of the Lua array at idx as a parameter of the
 * array type whose OID is type (int4[] 1007, int8[] 1016, "char"[] 1002, text[] 1009) and returns
 * its length in bytes; returns -1 with nothing pushed when the type is another one or an element
 * has no binary form of it (such an array is sent as a text literal). Exposed for unit tests. */
long long etl_pg_binary_array(struct lua_State *L, int idx, unsigned type);

/* Arrays a C module already holds in C arrays, as parameters of db:exec / db:exec_prepared: each
 * pushes a userdata (metatable ETL_PG_ARRAY_MT) holding the binary form of the n values, sent
 * as it is in binary format to a parameter of exactly that type (another type raises). type:
 * int4[] 1007 or int8[] 1016 (an int4 value out of range raises); the "char"[] elements are
 * ASCII characters (another byte raises). */
#define ETL_PG_ARRAY_MT "etlua.pg.array"
void etl_pg_push_int_array(struct lua_State *L, unsigned type, const int64_t *v, size_t n);
void etl_pg_push_char_array(struct lua_State *L, const char *v, size_t n);
/* The bytes (*len of them) and array type of such a userdata at idx, or NULL for another value. */
const unsigned char *etl_pg_array_bytes(struct lua_State *L, int idx, unsigned *type, size_t *len);

/* Writes the rows at stack index rows (Lua arrays of ncols values) in COPY's binary format
 * (header, tuples, trailer) into *buf and returns their length in bytes, for columns of the type
 * OIDs types[0..ncols-1]; returns -1 when a column's type or a value has no binary form etlua
 * knows (the rows then go as text). *buf is malloc'd memory of *cap bytes (NULL and 0 at first),
 * grown with realloc, the caller's to keep and free; raises when memory runs out. Nothing is left
 * on the stack. Exposed for unit tests. */
long long etl_pg_copy_binary(struct lua_State *L, int rows, int ncols, const unsigned *types,
                             unsigned char **buf, size_t *cap);

#endif
