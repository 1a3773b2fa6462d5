{#- Deterministic ids: RFC 4122 UUIDv5 (SHA-1, namespace + name), so a re-run or a full refresh
    gives every derived record the same id, and Python's uuid.uuid5 reproduces it. -#}

{% macro fee_id_namespace() -%}6f9b1c3e-4a51-5d2b-9e7a-3c1f0d2b8a64{%- endmacro %}

{% macro uuid5(name, namespace=fee_id_namespace()) -%}
    toUUID(lower(concat(
        hex(substring(SHA1(concat(unhex('{{ namespace | replace("-", "") }}'), {{ name }})), 1, 4)), '-',
        hex(substring(SHA1(concat(unhex('{{ namespace | replace("-", "") }}'), {{ name }})), 5, 2)), '-',
        hex(toUInt8(bitOr(bitAnd(reinterpretAsUInt8(substring(SHA1(concat(unhex('{{ namespace | replace("-", "") }}'), {{ name }})), 7, 1)), 15), 80))),
        hex(substring(SHA1(concat(unhex('{{ namespace | replace("-", "") }}'), {{ name }})), 8, 1)), '-',
        hex(toUInt8(bitOr(bitAnd(reinterpretAsUInt8(substring(SHA1(concat(unhex('{{ namespace | replace("-", "") }}'), {{ name }})), 9, 1)), 63), 128))),
        hex(substring(SHA1(concat(unhex('{{ namespace | replace("-", "") }}'), {{ name }})), 10, 1)), '-',
        hex(substring(SHA1(concat(unhex('{{ namespace | replace("-", "") }}'), {{ name }})), 11, 6)))))
{%- endmacro %}
