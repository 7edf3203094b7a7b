/*
 * partfile.h - the suffix of a file still being written, ".NAME.ferry-part"
 * beside NAME (docs/transfers.md): the engine's while a send arrives, the
 * library's while a retrieve does. The engine refuses a sent name ending
 * in it, so that no file sent can be taken for, or overwrite, a part of
 * its own; with one definition for both sides, the parts an interrupted
 * retrieve left in a directory are refused too when that directory is
 * sent, rather than sent as data.
 */
#ifndef FERRY_PARTFILE_H
#define FERRY_PARTFILE_H

#define FERRY_PART_SUFFIX ".ferry-part"

#endif
