/* io.h — everything a tool needs to read and write its files: the amtl
 * MessagePack envelope (envelope.h), atomic replacement of a file
 * (safe_write.h), whole-file reads (read_all.h) and the text buffer of the
 * JSON/DOT/TSV outputs (strbuf.h).  Code that needs one of them can include
 * that header alone.
 */
#ifndef AMTL_IO_H
#define AMTL_IO_H

#include "format/envelope.h"
#include "format/read_all.h"
#include "format/safe_write.h"
#include "format/strbuf.h"

#endif
