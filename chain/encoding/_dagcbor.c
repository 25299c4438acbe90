/*
 * The canonical DAG-CBOR encoder of chain/encoding/dagcbor.py in C: the same values, the same bytes and
 * the same ValueError messages as its pure-Python twin (`_encode_into`), which stays the reference and
 * the fallback. Sync spends a fifth of its time encoding (state flushes, CIDs of messages and blocks,
 * and the re-encode by which the decoder proves its input canonical), almost all of it in the
 * interpreter's per-item dispatch.
 *
 * encode(obj, cid_type, max_depth) -> bytes. cid_type is chain.encoding.cid.CID, passed in so that this
 * module imports nothing; a CID's binary form is its `_bytes` slot.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    unsigned char *data;
    size_t len;
    size_t cap;
} Buffer;

static PyObject *BYTES_ATTR; /* "_bytes", interned */

static int grow(Buffer *b, size_t extra) {
    if (b->len + extra <= b->cap) {
        return 0;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) {
        cap *= 2;
    }
    unsigned char *data = PyMem_Realloc(b->data, cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static int put(Buffer *b, const void *src, size_t n) {
    if (grow(b, n) < 0) {
        return -1;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

/* The shortest head for a major type and argument, as DAG-CBOR requires. */
static int head(Buffer *b, unsigned major, uint64_t n) {
    if (grow(b, 9) < 0) {
        return -1;
    }
    unsigned char *p = b->data + b->len;
    unsigned char m = (unsigned char)(major << 5);
    if (n < 24) {
        p[0] = m | (unsigned char)n;
        b->len += 1;
    } else if (n < 0x100) {
        p[0] = m | 24;
        p[1] = (unsigned char)n;
        b->len += 2;
    } else if (n < 0x10000) {
        p[0] = m | 25;
        p[1] = (unsigned char)(n >> 8);
        p[2] = (unsigned char)n;
        b->len += 3;
    } else if (n < 0x100000000ull) {
        p[0] = m | 26;
        for (int i = 0; i < 4; i++) {
            p[1 + i] = (unsigned char)(n >> (24 - 8 * i));
        }
        b->len += 5;
    } else {
        p[0] = m | 27;
        for (int i = 0; i < 8; i++) {
            p[1 + i] = (unsigned char)(n >> (56 - 8 * i));
        }
        b->len += 9;
    }
    return 0;
}

static int too_big(PyObject *obj) {
    PyErr_Format(PyExc_ValueError, "integer %S does not fit in 64 bits (DAG-CBOR has no bignums)", obj);
    return -1;
}

static int encode_int(Buffer *b, PyObject *obj) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow == 0) {
        return v >= 0 ? head(b, 0, (uint64_t)v) : head(b, 1, (uint64_t)(-(v + 1)));
    }
    if (overflow > 0) {
        unsigned long long u = PyLong_AsUnsignedLongLong(obj);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            return too_big(obj);
        }
        return head(b, 0, u);
    }
    /* Below -2^63: encoded as major 1 with argument -1 - obj, which must fit in 64 bits. */
    PyObject *one = PyLong_FromLong(1);
    PyObject *neg = one ? PyNumber_Negative(obj) : NULL;
    PyObject *arg = neg ? PyNumber_Subtract(neg, one) : NULL;
    Py_XDECREF(one);
    Py_XDECREF(neg);
    if (arg == NULL) {
        return -1;
    }
    unsigned long long u = PyLong_AsUnsignedLongLong(arg);
    Py_DECREF(arg);
    if (u == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return too_big(obj);
    }
    return head(b, 1, u);
}

static int encode_text(Buffer *b, PyObject *obj) {
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(obj, &n);
    if (s == NULL) {
        return -1;
    }
    if (head(b, 3, (uint64_t)n) < 0) {
        return -1;
    }
    return put(b, s, (size_t)n);
}

static int encode_item(Buffer *b, PyObject *obj, int depth, int limit, PyObject *cid_type);

typedef struct {
    const char *key;
    Py_ssize_t len;
    PyObject *value;
} Entry;

static int entry_order(const void *x, const void *y) {
    const Entry *a = x, *c = y;
    if (a->len != c->len) {
        return a->len < c->len ? -1 : 1;
    }
    return memcmp(a->key, c->key, (size_t)a->len);
}

static int encode_map(Buffer *b, PyObject *obj, int depth, int limit, PyObject *cid_type) {
    Py_ssize_t n = PyDict_Size(obj);
    Entry *entries = PyMem_Malloc(sizeof(Entry) * (size_t)(n ? n : 1));
    if (entries == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    /* The dict is held for the whole encode: values are borrowed, key UTF-8 buffers cached by str. */
    Py_INCREF(obj);
    Py_ssize_t pos = 0, i = 0;
    PyObject *key, *value;
    int rc = 0;
    while (PyDict_Next(obj, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key)) {
            PyErr_Format(PyExc_ValueError, "map key %R is not a string", key);
            rc = -1;
            break;
        }
        entries[i].key = PyUnicode_AsUTF8AndSize(key, &entries[i].len);
        if (entries[i].key == NULL) {
            rc = -1;
            break;
        }
        entries[i].value = value;
        i++;
    }
    if (rc == 0) {
        qsort(entries, (size_t)i, sizeof(Entry), entry_order);
        rc = head(b, 5, (uint64_t)i);
        for (Py_ssize_t k = 0; rc == 0 && k < i; k++) {
            rc = head(b, 3, (uint64_t)entries[k].len);
            if (rc == 0) {
                rc = put(b, entries[k].key, (size_t)entries[k].len);
            }
            if (rc == 0) {
                rc = encode_item(b, entries[k].value, depth + 1, limit, cid_type);
            }
        }
    }
    Py_DECREF(obj);
    PyMem_Free(entries);
    return rc;
}

static int encode_bytes_like(Buffer *b, PyObject *obj) {
    PyObject *raw = PyBytes_FromObject(obj);
    if (raw == NULL) {
        return -1;
    }
    int rc = head(b, 2, (uint64_t)PyBytes_GET_SIZE(raw));
    if (rc == 0) {
        rc = put(b, PyBytes_AS_STRING(raw), (size_t)PyBytes_GET_SIZE(raw));
    }
    Py_DECREF(raw);
    return rc;
}

static int encode_item(Buffer *b, PyObject *obj, int depth, int limit, PyObject *cid_type) {
    PyTypeObject *t = Py_TYPE(obj);
    if (t == &PyBytes_Type) {
        if (head(b, 2, (uint64_t)PyBytes_GET_SIZE(obj)) < 0) {
            return -1;
        }
        return put(b, PyBytes_AS_STRING(obj), (size_t)PyBytes_GET_SIZE(obj));
    }
    if (t == &PyLong_Type) {
        return encode_int(b, obj);
    }
    if (t == &PyList_Type || t == &PyTuple_Type) {
        if (depth >= limit) {
            PyErr_Format(PyExc_ValueError, "nesting deeper than %d", limit);
            return -1;
        }
        /* A list may change under us only through __del__ tricks; take a stable sequence anyway. */
        PyObject *seq = PySequence_Fast(obj, "not a sequence");
        if (seq == NULL) {
            return -1;
        }
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        int rc = head(b, 4, (uint64_t)n);
        for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
            rc = encode_item(b, PySequence_Fast_GET_ITEM(seq, i), depth + 1, limit, cid_type);
        }
        Py_DECREF(seq);
        return rc;
    }
    if ((PyObject *)t == cid_type) {
        PyObject *raw = PyObject_GetAttr(obj, BYTES_ATTR);
        if (raw == NULL) {
            return -1;
        }
        if (!PyBytes_CheckExact(raw)) {
            Py_DECREF(raw);
            PyErr_SetString(PyExc_ValueError, "CID bytes are not a bytes object");
            return -1;
        }
        static const unsigned char tag[2] = {0xd8, 0x2a};
        static const unsigned char prefix[1] = {0x00};
        int rc = put(b, tag, 2);
        if (rc == 0) {
            rc = head(b, 2, (uint64_t)PyBytes_GET_SIZE(raw) + 1);
        }
        if (rc == 0) {
            rc = put(b, prefix, 1);
        }
        if (rc == 0) {
            rc = put(b, PyBytes_AS_STRING(raw), (size_t)PyBytes_GET_SIZE(raw));
        }
        Py_DECREF(raw);
        return rc;
    }
    if (t == &PyUnicode_Type) {
        return encode_text(b, obj);
    }
    if (obj == Py_None || obj == Py_True || obj == Py_False) {
        unsigned char v = obj == Py_None ? 0xf6 : obj == Py_True ? 0xf5 : 0xf4;
        return put(b, &v, 1);
    }
    if (t == &PyDict_Type) {
        if (depth >= limit) {
            PyErr_Format(PyExc_ValueError, "nesting deeper than %d", limit);
            return -1;
        }
        return encode_map(b, obj, depth, limit, cid_type);
    }
    if (t == &PyFloat_Type) {
        double v = PyFloat_AS_DOUBLE(obj);
        if (!isfinite(v)) {
            PyErr_Format(PyExc_ValueError, "float %S is not allowed in DAG-CBOR", obj);
            return -1;
        }
        uint64_t bits;
        memcpy(&bits, &v, 8);
        unsigned char out[9];
        out[0] = 0xfb;
        for (int i = 0; i < 8; i++) {
            out[1 + i] = (unsigned char)(bits >> (56 - 8 * i));
        }
        return put(b, out, 9);
    }
    if (PyByteArray_Check(obj) || PyMemoryView_Check(obj)) {
        return encode_bytes_like(b, obj);
    }
    if (PyLong_Check(obj)) { /* IntEnum and friends; bool was handled above */
        /* PyNumber_Index returns an exact int (Python >= 3.10). */
        PyObject *plain = PyNumber_Index(obj);
        if (plain == NULL) {
            return -1;
        }
        int rc = encode_int(b, plain);
        Py_DECREF(plain);
        return rc;
    }
    PyErr_Format(PyExc_ValueError, "cannot encode %s as DAG-CBOR", t->tp_name);
    return -1;
}

static PyObject *dagcbor_encode(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *obj, *cid_type;
    int limit;
    if (!PyArg_ParseTuple(args, "OOi:encode", &obj, &cid_type, &limit)) {
        return NULL;
    }
    if (!PyType_Check(cid_type)) {
        PyErr_SetString(PyExc_TypeError, "cid_type must be a type");
        return NULL;
    }
    Buffer b = {NULL, 0, 0};
    if (Py_EnterRecursiveCall(" while encoding DAG-CBOR") != 0) {
        return NULL;
    }
    int rc = encode_item(&b, obj, 0, limit, cid_type);
    Py_LeaveRecursiveCall();
    PyObject *out = rc == 0 ? PyBytes_FromStringAndSize((const char *)b.data, (Py_ssize_t)b.len) : NULL;
    PyMem_Free(b.data);
    return out;
}

static PyMethodDef METHODS[] = {
    {"encode", dagcbor_encode, METH_VARARGS,
     "encode(obj, cid_type, max_depth) -> bytes: canonical DAG-CBOR (ValueError for what it cannot hold)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {
    PyModuleDef_HEAD_INIT, "_dagcbor", "Canonical DAG-CBOR encoding in C.", -1, METHODS,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__dagcbor(void) {
    BYTES_ATTR = PyUnicode_InternFromString("_bytes");
    if (BYTES_ATTR == NULL) {
        return NULL;
    }
    return PyModule_Create(&MODULE);
}
