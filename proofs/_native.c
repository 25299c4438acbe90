/*
 * Native hot loops for proofs/: the sha256-trunc254 node hash over whole tree levels, fr32 padding, and
 * "fr32-pad then build the subtree" for CommP, so that Python only hands over large chunks.
 *
 * Every node hash has a 64-byte input, i.e. one data block plus one constant padding block. Going through
 * SHA256_Transform on a bare state (instead of SHA256_Init/Update/Final or EVP) keeps the per-node cost
 * at the two compressions; OpenSSL picks its SHA-NI or AVX code for them.
 *
 * The GIL is released around all hashing, so Python threads can hash chunks on several cores.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

/* SHA256_Transform is deprecated in OpenSSL 3 but remains the cheapest single-block entry point. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#define NODE 32
#define IN_BLOCK 127  /* fr32: 127 bytes in ... */
#define OUT_BLOCK 128 /* ... 128 bytes (four 254-bit field elements) out */
#define MAX_HEIGHT 64
/* Below this many bytes the GIL round trip costs more than it could give back. */
#define GIL_THRESHOLD 4096

static const uint32_t SHA256_IV[8] = {
    0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au, 0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u,
};

/* The second block of every 64-byte message: 0x80, zeros, then the bit length 512 big-endian. */
static const unsigned char LENGTH_BLOCK[64] = {
    0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0,    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0,    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x00,
};

/* out = sha256(in[0..64]) with the two top bits of its last byte cleared; out may alias in. */
static inline void hash_node(const unsigned char *in, unsigned char *out) {
#ifdef OPENSSL_NO_DEPRECATED_3_0
    unsigned char digest[32];
    SHA256(in, 64, digest);
    memcpy(out, digest, 32);
#else
    SHA256_CTX ctx;
    memcpy(ctx.h, SHA256_IV, sizeof SHA256_IV);
    SHA256_Transform(&ctx, in);
    SHA256_Transform(&ctx, LENGTH_BLOCK);
    /* Word stores: byte-by-byte stores of the digest stall the loads of the next hash that reads it. */
    for (int i = 0; i < 8; i++) {
        uint32_t w = __builtin_bswap32(ctx.h[i]);
        memcpy(out + 4 * i, &w, 4);
    }
#endif
    out[31] &= 0x3f;
}

/* fr32: 127 input bytes as a little-endian bit string, cut into 254-bit runs, each stored in 32 bytes
 * with its two top bits zero. Element k starts at input bit 254k = byte 31k + (6k / 8), shift 6k % 8. */
static inline void fr32_pad_block(const unsigned char *in, unsigned char *out) {
    memcpy(out, in, 32);
    out[31] &= 0x3f;
    for (int i = 0; i < 32; i++) {
        out[32 + i] = (unsigned char)((in[31 + i] >> 6) | (in[32 + i] << 2));
    }
    out[63] &= 0x3f;
    for (int i = 0; i < 32; i++) {
        out[64 + i] = (unsigned char)((in[63 + i] >> 4) | (in[64 + i] << 4));
    }
    out[95] &= 0x3f;
    for (int i = 0; i < 31; i++) {
        out[96 + i] = (unsigned char)((in[95 + i] >> 2) | (in[96 + i] << 6));
    }
    out[127] = (unsigned char)(in[126] >> 2);
}

/* Inverse of fr32_pad_block; returns 0 when a field element has one of its two top bits set. */
static inline int fr32_unpad_block(const unsigned char *in, unsigned char *out) {
    if ((in[31] | in[63] | in[95] | in[127]) & 0xc0) {
        return 0;
    }
    memcpy(out, in, 31);
    out[31] = (unsigned char)(in[31] | (in[32] << 6));
    for (int i = 1; i < 32; i++) {
        out[31 + i] = (unsigned char)((in[31 + i] >> 2) | (in[32 + i] << 6));
    }
    /* Byte 63 straddles elements 1 and 2, byte 95 elements 2 and 3. */
    out[63] = (unsigned char)((in[63] >> 2) | (in[64] << 4));
    for (int i = 1; i < 32; i++) {
        out[63 + i] = (unsigned char)((in[63 + i] >> 4) | (in[64 + i] << 4));
    }
    out[95] = (unsigned char)((in[95] >> 4) | (in[96] << 2));
    for (int i = 1; i < 32; i++) {
        out[95 + i] = (unsigned char)((in[95 + i] >> 6) | (in[96 + i] << 2));
    }
    return 1;
}

/* Hash a level of `count` nodes (count even) in place into its count/2 parents. Consecutive node hashes are
 * independent, which lets the CPU overlap them; a parent-after-children order would serialise them. */
static void hash_level_in_place(unsigned char *nodes, size_t count) {
    for (size_t i = 0; i < count / 2; i++) {
        hash_node(nodes + 2 * i * NODE, nodes + i * NODE);
    }
}

/* Root of the tree over fr32(in), in being n_blocks * 127 bytes with n_blocks a power of two. Blocks are
 * padded and hashed a batch at a time (one L1-sized subtree, level by level), and batch roots merge on a
 * stack of pending left siblings, one per height. */
#define BATCH_BLOCKS 64 /* 8 KiB of padded data, 256 leaves */

static void fr32_subtree_root(const unsigned char *in, size_t n_blocks, unsigned char *root) {
    unsigned char work[BATCH_BLOCKS * OUT_BLOCK];
    unsigned char stack[MAX_HEIGHT][NODE];
    int have[MAX_HEIGHT] = {0};
    unsigned char pair[2 * NODE];

    size_t batch = n_blocks < BATCH_BLOCKS ? n_blocks : BATCH_BLOCKS;
    int batch_height = 2;
    while (((size_t)1 << (batch_height - 2)) < batch) {
        batch_height++;
    }
    for (size_t first = 0; first < n_blocks; first += batch) {
        for (size_t b = 0; b < batch; b++) {
            fr32_pad_block(in + (first + b) * IN_BLOCK, work + b * OUT_BLOCK);
        }
        for (size_t count = batch * (OUT_BLOCK / NODE); count > 1; count /= 2) {
            hash_level_in_place(work, count);
        }
        int h = batch_height;
        while (have[h]) {
            memcpy(pair, stack[h], NODE);
            memcpy(pair + NODE, work, NODE);
            hash_node(pair, work);
            have[h] = 0;
            h++;
        }
        memcpy(stack[h], work, NODE);
        have[h] = 1;
    }
    for (int h = 0; h < MAX_HEIGHT; h++) {
        if (have[h]) {
            memcpy(root, stack[h], NODE);
            return;
        }
    }
}

static void hash_pairs(const unsigned char *in, unsigned char *dst, Py_ssize_t pairs) {
    for (Py_ssize_t i = 0; i < pairs; i++) {
        hash_node(in + i * 2 * NODE, dst + i * NODE);
    }
}

/* The argument of an fr32 conversion (in `buf`) and its result, a new bytes object of `out_block` bytes for
   each `in_block` bytes in; NULL with the error set and `buf` released when the argument is not whole blocks. */
static PyObject *fr32_convert_start(PyObject *args, const char *format, Py_buffer *buf, Py_ssize_t in_block,
                                    Py_ssize_t out_block, const char *what) {
    if (!PyArg_ParseTuple(args, format, buf)) {
        return NULL;
    }
    if (buf->len % in_block != 0) {
        PyErr_Format(PyExc_ValueError, "%s needs a multiple of %zd bytes, got %zd", what, in_block, buf->len);
        PyBuffer_Release(buf);
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, buf->len / in_block * out_block);
    if (out == NULL) {
        PyBuffer_Release(buf);
    }
    return out;
}

static int is_power_of_two(size_t n) { return n != 0 && (n & (n - 1)) == 0; }

static PyObject *py_hash_level(PyObject *self, PyObject *args) {
    Py_buffer buf;
    if (!PyArg_ParseTuple(args, "y*:hash_level", &buf)) {
        return NULL;
    }
    if (buf.len % (2 * NODE) != 0) {
        PyErr_Format(PyExc_ValueError, "a level must hold an even number of 32-byte nodes, got %zd bytes",
                     buf.len);
        PyBuffer_Release(&buf);
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, buf.len / 2);
    if (out == NULL) {
        PyBuffer_Release(&buf);
        return NULL;
    }
    const unsigned char *in = buf.buf;
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
    Py_ssize_t pairs = buf.len / (2 * NODE);
    if (buf.len >= GIL_THRESHOLD) {
        Py_BEGIN_ALLOW_THREADS
        hash_pairs(in, dst, pairs);
        Py_END_ALLOW_THREADS
    } else {
        hash_pairs(in, dst, pairs);
    }
    PyBuffer_Release(&buf);
    return out;
}

static PyObject *py_fr32_pad(PyObject *self, PyObject *args) {
    Py_buffer buf;
    PyObject *out = fr32_convert_start(args, "y*:fr32_pad", &buf, IN_BLOCK, OUT_BLOCK, "fr32 padding");
    if (out == NULL) {
        return NULL;
    }
    Py_ssize_t blocks = buf.len / IN_BLOCK;
    const unsigned char *in = buf.buf;
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t b = 0; b < blocks; b++) {
        fr32_pad_block(in + b * IN_BLOCK, dst + b * OUT_BLOCK);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    return out;
}

static PyObject *py_fr32_unpad(PyObject *self, PyObject *args) {
    Py_buffer buf;
    PyObject *out = fr32_convert_start(args, "y*:fr32_unpad", &buf, OUT_BLOCK, IN_BLOCK, "fr32 unpadding");
    if (out == NULL) {
        return NULL;
    }
    Py_ssize_t blocks = buf.len / OUT_BLOCK;
    const unsigned char *in = buf.buf;
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
    Py_ssize_t bad = -1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t b = 0; b < blocks; b++) {
        if (!fr32_unpad_block(in + b * OUT_BLOCK, dst + b * IN_BLOCK)) {
            bad = b;
            break;
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    if (bad >= 0) {
        Py_DECREF(out);
        PyErr_Format(PyExc_ValueError,
                     "not fr32-padded: a field element of the 128-byte block at %zd has a top bit set",
                     bad * OUT_BLOCK);
        return NULL;
    }
    return out;
}

static PyObject *py_fr32_subtree_root(PyObject *self, PyObject *args) {
    Py_buffer buf;
    if (!PyArg_ParseTuple(args, "y*:fr32_subtree_root", &buf)) {
        return NULL;
    }
    size_t blocks = (size_t)buf.len / IN_BLOCK;
    if (buf.len % IN_BLOCK != 0 || !is_power_of_two(blocks)) {
        PyErr_Format(PyExc_ValueError, "a piece subtree needs 127 * 2^k bytes, got %zd", buf.len);
        PyBuffer_Release(&buf);
        return NULL;
    }
    unsigned char root[NODE];
    const unsigned char *in = buf.buf;
    if (buf.len >= GIL_THRESHOLD) {
        Py_BEGIN_ALLOW_THREADS
        fr32_subtree_root(in, blocks, root);
        Py_END_ALLOW_THREADS
    } else {
        fr32_subtree_root(in, blocks, root);
    }
    PyBuffer_Release(&buf);
    return PyBytes_FromStringAndSize((const char *)root, NODE);
}

static PyObject *py_root_from_path(PyObject *self, PyObject *args) {
    Py_buffer leaf, path;
    unsigned long long index;
    if (!PyArg_ParseTuple(args, "y*Ky*:root_from_path", &leaf, &index, &path)) {
        return NULL;
    }
    if (leaf.len != NODE || path.len % NODE != 0 || path.len / NODE > MAX_HEIGHT) {
        PyErr_Format(PyExc_ValueError, "root_from_path takes a 32-byte leaf and at most %d 32-byte nodes, got %zd and %zd bytes",
                     MAX_HEIGHT, leaf.len, path.len);
        PyBuffer_Release(&leaf);
        PyBuffer_Release(&path);
        return NULL;
    }
    /* in = the two children of the next node up: ours on the left for an even index, else on the right. */
    unsigned char in[2 * NODE], node[NODE];
    memcpy(node, leaf.buf, NODE);
    const unsigned char *siblings = path.buf;
    for (Py_ssize_t level = 0; level < path.len / NODE; level++) {
        const unsigned char *sibling = siblings + level * NODE;
        if (index & 1) {
            memcpy(in, sibling, NODE);
            memcpy(in + NODE, node, NODE);
        } else {
            memcpy(in, node, NODE);
            memcpy(in + NODE, sibling, NODE);
        }
        hash_node(in, node);
        index >>= 1;
    }
    PyBuffer_Release(&leaf);
    PyBuffer_Release(&path);
    return PyBytes_FromStringAndSize((const char *)node, NODE);
}

static PyMethodDef methods[] = {
    {"hash_level", py_hash_level, METH_VARARGS,
     "hash_level(level) -> bytes: sha256-trunc254 of each adjacent pair of 32-byte nodes."},
    {"fr32_pad", py_fr32_pad, METH_VARARGS, "fr32_pad(data) -> bytes: 127-byte blocks to 128-byte blocks."},
    {"fr32_unpad", py_fr32_unpad, METH_VARARGS,
     "fr32_unpad(data) -> bytes: 128-byte blocks back to 127 bytes; ValueError if not fr32-padded."},
    {"root_from_path", py_root_from_path, METH_VARARGS,
     "root_from_path(leaf, index, path) -> bytes: the root a leaf and its sibling path (joined, bottom-up) commit to."},
    {"fr32_subtree_root", py_fr32_subtree_root, METH_VARARGS,
     "fr32_subtree_root(data) -> bytes: root of the sha256-trunc254 tree over fr32(data), len(data) = 127*2^k."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "proofs._native", "Native hashing loops for proofs/ (sha256-trunc254 trees, fr32).",
    -1, methods,
};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
