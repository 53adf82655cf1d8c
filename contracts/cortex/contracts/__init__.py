"""The wire contracts of CodeValdCortex: every event, command, reply and subject.

Everything here is a `msgspec.Struct` or a constant. The committed JSON Schema under
`contracts/schema/` is generated from these modules (`make contracts`) and checked by a test.
"""
