"""Pure parsers of file formats (ELF, notes, DWARF CFI): bytes in, records out."""
