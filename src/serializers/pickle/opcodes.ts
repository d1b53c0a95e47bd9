// Pickle opcodes (Lib/pickle.py names). The decoder switches on numeric literals instead
// (a switch over literals compiles to a jump table); these names serve the encoder,
// error messages and tests.

export const MARK = 0x28; //            '('  push a mark
export const STOP = 0x2e; //            '.'  end of pickle
export const POP = 0x30; //             '0'
export const POP_MARK = 0x31; //        '1'
export const DUP = 0x32; //             '2'
export const FLOAT = 0x46; //           'F'  text float (protocol 0)
export const INT = 0x49; //             'I'  text int; "I01\n"/"I00\n" are True/False
export const BININT = 0x4a; //          'J'  i32le
export const BININT1 = 0x4b; //         'K'  u8
export const LONG = 0x4c; //            'L'  text int, trailing 'L'
export const BININT2 = 0x4d; //         'M'  u16le
export const NONE = 0x4e; //            'N'
export const PERSID = 0x50; //          'P'
export const BINPERSID = 0x51; //       'Q'
export const REDUCE = 0x52; //          'R'
export const STRING = 0x53; //          'S'  quoted, escaped Python 2 str
export const BINSTRING = 0x54; //       'T'
export const SHORT_BINSTRING = 0x55; // 'U'
export const UNICODE = 0x56; //         'V'  raw-unicode-escape line
export const BINUNICODE = 0x58; //      'X'  u32le + UTF-8
export const APPEND = 0x61; //          'a'
export const BUILD = 0x62; //           'b'
export const GLOBAL = 0x63; //          'c'  "module\nname\n"
export const DICT = 0x64; //            'd'
export const EMPTY_DICT = 0x7d; //      '}'
export const APPENDS = 0x65; //         'e'
export const GET = 0x67; //             'g'
export const BINGET = 0x68; //          'h'
export const INST = 0x69; //            'i'
export const LONG_BINGET = 0x6a; //     'j'
export const LIST = 0x6c; //            'l'
export const EMPTY_LIST = 0x5d; //      ']'
export const OBJ = 0x6f; //             'o'
export const PUT = 0x70; //             'p'
export const BINPUT = 0x71; //          'q'
export const LONG_BINPUT = 0x72; //     'r'
export const SETITEM = 0x73; //         's'
export const TUPLE = 0x74; //           't'
export const EMPTY_TUPLE = 0x29; //     ')'
export const SETITEMS = 0x75; //        'u'
export const BINFLOAT = 0x47; //        'G'  f64 big-endian
// protocol 2
export const PROTO = 0x80;
export const NEWOBJ = 0x81;
export const EXT1 = 0x82;
export const EXT2 = 0x83;
export const EXT4 = 0x84;
export const TUPLE1 = 0x85;
export const TUPLE2 = 0x86;
export const TUPLE3 = 0x87;
export const NEWTRUE = 0x88;
export const NEWFALSE = 0x89;
export const LONG1 = 0x8a;
export const LONG4 = 0x8b;
// protocol 3
export const BINBYTES = 0x42; //        'B'
export const SHORT_BINBYTES = 0x43; //  'C'
// protocol 4
export const SHORT_BINUNICODE = 0x8c;
export const BINUNICODE8 = 0x8d;
export const BINBYTES8 = 0x8e;
export const EMPTY_SET = 0x8f;
export const ADDITEMS = 0x90;
export const FROZENSET = 0x91;
export const NEWOBJ_EX = 0x92;
export const STACK_GLOBAL = 0x93;
export const MEMOIZE = 0x94;
export const FRAME = 0x95;
// protocol 5
export const BYTEARRAY8 = 0x96;
export const NEXT_BUFFER = 0x97;
export const READONLY_BUFFER = 0x98;

/** Highest protocol this codec reads (and CPython writes). */
export const HIGHEST_PROTOCOL = 5;

/** Items per APPENDS / SETITEMS / ADDITEMS batch, as CPython's BATCHSIZE. */
export const BATCH_SIZE = 1000;

/** CPython's frame size target (`_FRAME_SIZE_TARGET`) and minimum framed body (`_FRAME_SIZE_MIN`). */
export const FRAME_SIZE_TARGET = 64 * 1024;
export const FRAME_SIZE_MIN = 4;
export const FRAME_HEADER_SIZE = 9;

const NAMES: Record<number, string> = {
  [PERSID]: "PERSID", [BINPERSID]: "BINPERSID", [BUILD]: "BUILD", [INST]: "INST", [OBJ]: "OBJ",
  [NEWOBJ]: "NEWOBJ", [NEWOBJ_EX]: "NEWOBJ_EX", [EXT1]: "EXT1", [EXT2]: "EXT2", [EXT4]: "EXT4",
  [NEXT_BUFFER]: "NEXT_BUFFER", [READONLY_BUFFER]: "READONLY_BUFFER", [REDUCE]: "REDUCE",
};

/** The pickletools name of an opcode, for error messages. */
export function opcodeName(op: number): string {
  return NAMES[op] ?? `0x${op.toString(16).padStart(2, "0")}`;
}
