/*
 * Exact text -> decimal128 conversion for the CSV reader's plain money columns.
 *
 * Arrow's own string -> decimal conversion goes through a general parser
 * (exponents, blanks, any scale, then a rescale) and was a third of the whole
 * read of a money-heavy CSV. Nearly every money value in practice has the plain
 * form [+-]digits[mark digits]; this reads that form in one pass, without the
 * GIL, and refuses anything else, so the caller can hand such values to Arrow.
 * The usual case (up to 8 integer digits, exactly `scale` places) reads its
 * integer digits 8 at a time (SWAR) on little-endian machines: about 8 ns a
 * value instead of 14 for the digit-by-digit loop, whose exit mispredicts.
 *
 * parse_decimals(offsets, data, validity, offset, length, precision, scale, mark)
 *   offsets, data, validity: the buffers of an Arrow binary/string array
 *     (int32 offsets; validity may be None);
 *   offset, length: the array's slice;
 *   precision (1..MAX_PRECISION, a module constant), scale: the decimal128 type;
 *   mark: the decimal mark as a byte value.
 * Returns a bytearray holding 16 * (offset + length) bytes: the little-endian
 * decimal128 value of each row from `offset` on (null rows hold 0), or, at the
 * first value that is not in the plain form or does not fit the type, the index
 * of that row (an int). A value with more decimal places than the scale fits
 * only when the extra places are zeros: values are never rounded.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MAX_PRECISION 18 /* 10**18 - 1 fits in int64 */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define EIGHT_DIGITS_AT_ONCE 1
#else
#define EIGHT_DIGITS_AT_ONCE 0
#endif

static const uint64_t POWERS_OF_TEN[MAX_PRECISION + 1] = {
    1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL, 100000000ULL, 1000000000ULL,
    10000000000ULL, 100000000000ULL, 1000000000000ULL, 10000000000000ULL, 100000000000000ULL,
    1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL, 1000000000000000000ULL,
};

static inline int
is_digit(uint8_t c)
{
    return (uint8_t)(c - '0') < 10;
}

#if EIGHT_DIGITS_AT_ONCE
/* 8 ASCII digits, the most significant at the lowest address, as a number; 0 when a byte is
 * not a digit. The SWAR steps of fast_float's parse_eight_digits_unrolled. */
static inline int
eight_digits(uint64_t word, uint64_t *number)
{
    if (((word + 0x4646464646464646ULL) | (word - 0x3030303030303030ULL)) & 0x8080808080808080ULL) {
        return 0;
    }
    word -= 0x3030303030303030ULL;
    word = word * 10 + (word >> 8);
    word = (((word & 0x000000FF000000FFULL) * (100 + (1000000ULL << 32)))
            + (((word >> 16) & 0x000000FF000000FFULL) * (1 + (10000ULL << 32))))
           >> 32;
    *number = (uint32_t)word;
    return 1;
}

/* The usual shape, 1 to 8 integer digits then exactly `scale` places: read without a loop
 * whose length varies from row to row (its mispredicted exit was most of the time per value).
 * Returns 0 when the text has another shape; the general reader then decides. */
static inline int
usual_shape(const uint8_t *data, const uint8_t *p, const uint8_t *end, int scale, ptrdiff_t max_integer_digits,
            uint8_t mark, uint64_t *value)
{
    const ptrdiff_t integer_digits = (end - p) - (scale ? scale + 1 : 0);
    if (integer_digits < 1 || integer_digits > 8 || integer_digits > max_integer_digits
        || (p - data) + integer_digits < 8 /* the 8-byte load must start inside the buffer */
        || (scale && p[integer_digits] != mark)) {
        return 0;
    }
    uint64_t word;
    memcpy(&word, p + integer_digits - 8, 8);
    /* The bytes before the integer digits (lower addresses: low bytes) read as '0'. */
    const uint64_t keep = ~0ULL << (8 * (8 - integer_digits));
    word = (word & keep) | (0x3030303030303030ULL & ~keep);
    uint64_t integer;
    if (!eight_digits(word, &integer)) {
        return 0;
    }
    uint64_t fraction = 0;
    int all_digits = 1;
    for (const uint8_t *q = p + integer_digits + 1; q < end; q++) { /* `scale` bytes every row */
        all_digits &= is_digit(*q);
        fraction = fraction * 10 + (uint64_t)(*q - '0');
    }
    *value = integer * POWERS_OF_TEN[scale] + fraction;
    return all_digits;
}
#endif

static Py_ssize_t
parse_rows(const int32_t *offsets, const uint8_t *data, const uint8_t *validity, Py_ssize_t offset,
           Py_ssize_t length, int precision, int scale, uint8_t mark, int64_t *out)
{
    const ptrdiff_t max_integer_digits = precision - scale;
    for (Py_ssize_t row = offset; row < offset + length; row++) {
        int64_t *slot = out + 2 * row;
        if (validity != NULL && !((validity[row >> 3] >> (row & 7)) & 1)) {
            slot[0] = 0;
            slot[1] = 0;
            continue;
        }
        const uint8_t *p = data + offsets[row];
        const uint8_t *end = data + offsets[row + 1];
        int negative = 0;
        if (p < end && (*p == '-' || *p == '+')) {
            negative = *p == '-';
            p++;
        }
        uint64_t value = 0;
#if EIGHT_DIGITS_AT_ONCE
        if (usual_shape(data, p, end, scale, max_integer_digits, mark, &value)) {
            goto store;
        }
#endif
        const uint8_t *digits = p;
        while (p < end && *p == '0') { /* leading zeros count toward no precision */
            p++;
        }
        const uint8_t *significant = p;
        value = 0;
        /* Checked once after the loop: a too-long run may wrap, but is then refused. */
        while (p < end && is_digit(*p)) {
            value = value * 10 + (uint64_t)(*p - '0');
            p++;
        }
        if (p - significant > max_integer_digits) {
            return row;
        }
        int seen_digit = p > digits;
        ptrdiff_t places = 0;
        if (p < end && *p == mark) {
            p++;
            const uint8_t *fraction = p;
            const uint8_t *scale_end = end - p > scale ? p + scale : end;
            while (p < scale_end && is_digit(*p)) {
                value = value * 10 + (uint64_t)(*p - '0');
                p++;
            }
            places = p - fraction;
            if (places == scale) {
                while (p < end && *p == '0') { /* places beyond the scale: zeros only */
                    p++;
                }
            }
            seen_digit |= p > fraction;
        }
        if (p != end || !seen_digit) {
            return row;
        }
        value *= POWERS_OF_TEN[scale - places];
#if EIGHT_DIGITS_AT_ONCE
    store:;
#endif
        int64_t signed_value = negative ? -(int64_t)value : (int64_t)value;
        slot[0] = signed_value;
        slot[1] = signed_value < 0 ? -1 : 0;
    }
    return -1;
}

static PyObject *
parse_decimals(PyObject *module, PyObject *args)
{
    Py_buffer offsets, data, validity = {0};
    PyObject *validity_object;
    Py_ssize_t offset, length;
    int precision, scale, mark;
    if (!PyArg_ParseTuple(args, "y*y*Onniii", &offsets, &data, &validity_object, &offset, &length, &precision,
                          &scale, &mark)) {
        return NULL;
    }
    PyObject *result = NULL;
    int has_validity = validity_object != Py_None;
    if (has_validity && PyObject_GetBuffer(validity_object, &validity, PyBUF_SIMPLE) < 0) {
        goto done;
    }
    if (precision < 1 || precision > MAX_PRECISION || scale < 0 || scale > precision || mark < 0 || mark > 255
        || offset < 0 || length < 0) {
        PyErr_SetString(PyExc_ValueError, "need 1 <= precision <= 18, 0 <= scale <= precision, a byte mark");
        goto done;
    }
    if (offsets.len < (Py_ssize_t)sizeof(int32_t) * (offset + length + 1)
        || (has_validity && validity.len * 8 < offset + length)) {
        PyErr_SetString(PyExc_ValueError, "buffers shorter than the array");
        goto done;
    }
    const int32_t *offset_values = (const int32_t *)offsets.buf;
    if (length > 0 && (offset_values[offset] < 0 || offset_values[offset + length] > data.len)) {
        PyErr_SetString(PyExc_ValueError, "offsets outside the data buffer");
        goto done;
    }
    result = PyByteArray_FromStringAndSize(NULL, 16 * (offset + length));
    if (result == NULL) {
        goto done;
    }
    Py_ssize_t bad_row;
    Py_BEGIN_ALLOW_THREADS
    bad_row = parse_rows(offset_values, (const uint8_t *)data.buf,
                         has_validity ? (const uint8_t *)validity.buf : NULL, offset, length, precision, scale,
                         (uint8_t)mark, (int64_t *)PyByteArray_AS_STRING(result));
    Py_END_ALLOW_THREADS
    if (bad_row >= 0) {
        Py_DECREF(result);
        result = PyLong_FromSsize_t(bad_row);
    }
done:
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    if (has_validity && validity.obj != NULL) {
        PyBuffer_Release(&validity);
    }
    return result;
}

static PyMethodDef methods[] = {
    {"parse_decimals", parse_decimals, METH_VARARGS, "Plain decimal texts to decimal128 values (see the module source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_decimal_text", NULL, -1, methods};

PyMODINIT_FUNC
PyInit__decimal_text(void)
{
    PyObject *created = PyModule_Create(&module);
    if (created != NULL && PyModule_AddIntConstant(created, "MAX_PRECISION", MAX_PRECISION) < 0) {
        Py_DECREF(created);
        return NULL;
    }
    return created;
}
