// A C struct layout in TypeScript: fields with C alignment rules, encoded to and
// decoded from Buffers. The mirrors of bpf/xnetmon.h are in layouts.ts and a test
// checks every offset and size against the object's BTF (cilium's habit).

export type Scalar = 'u8' | 'u16' | 'u32' | 'u64' | 'be16' | 'be32';
export interface ArrayType {
  readonly of: Scalar;
  readonly length: number;
}
export type FieldType = Scalar | ArrayType;

export interface FieldSpec {
  readonly name: string;
  readonly type: FieldType;
}
export interface Field extends FieldSpec {
  readonly offset: number;
  readonly size: number;
}

const SCALAR_SIZE: Record<Scalar, number> = { u8: 1, u16: 2, u32: 4, u64: 8, be16: 2, be32: 4 };

export type FieldValue = number | bigint | number[] | bigint[];
export type Decoded = Record<string, FieldValue>;

function sizeOf(type: FieldType): number {
  return typeof type === 'string' ? SCALAR_SIZE[type] : SCALAR_SIZE[type.of] * type.length;
}

function alignOf(type: FieldType): number {
  return typeof type === 'string' ? SCALAR_SIZE[type] : SCALAR_SIZE[type.of];
}

function writeScalar(buf: Buffer, offset: number, type: Scalar, value: number | bigint): void {
  switch (type) {
    case 'u8':
      buf.writeUInt8(Number(value), offset);
      break;
    case 'u16':
      buf.writeUInt16LE(Number(value), offset);
      break;
    case 'be16':
      buf.writeUInt16BE(Number(value), offset);
      break;
    case 'u32':
      buf.writeUInt32LE(Number(value) >>> 0, offset);
      break;
    case 'be32':
      buf.writeUInt32BE(Number(value) >>> 0, offset);
      break;
    case 'u64':
      buf.writeBigUInt64LE(BigInt(value), offset);
      break;
  }
}

function readScalar(buf: Buffer, offset: number, type: Scalar): number | bigint {
  switch (type) {
    case 'u8':
      return buf.readUInt8(offset);
    case 'u16':
      return buf.readUInt16LE(offset);
    case 'be16':
      return buf.readUInt16BE(offset);
    case 'u32':
      return buf.readUInt32LE(offset);
    case 'be32':
      return buf.readUInt32BE(offset);
    case 'u64':
      return buf.readBigUInt64LE(offset);
  }
}

export class StructLayout {
  readonly name: string;
  readonly fields: readonly Field[];
  readonly size: number;
  private readonly byName: Map<string, Field>;

  constructor(name: string, specs: readonly FieldSpec[]) {
    this.name = name;
    let offset = 0;
    let maxAlign = 1;
    const fields: Field[] = [];
    for (const spec of specs) {
      const align = alignOf(spec.type);
      maxAlign = Math.max(maxAlign, align);
      offset = Math.ceil(offset / align) * align;
      const size = sizeOf(spec.type);
      fields.push({ ...spec, offset, size });
      offset += size;
    }
    this.size = Math.ceil(offset / maxAlign) * maxAlign;
    this.fields = fields;
    this.byName = new Map(fields.map((f) => [f.name, f]));
  }

  field(name: string): Field {
    const field = this.byName.get(name);
    if (!field) throw new Error(`${this.name} has no field ${name}`);
    return field;
  }

  /** Encode; fields left out are zero. */
  encode(
    value: Readonly<Record<string, FieldValue | undefined>>,
    buf: Buffer = Buffer.alloc(this.size),
    at = 0,
  ): Buffer {
    buf.fill(0, at, at + this.size);
    for (const field of this.fields) {
      const v = value[field.name];
      if (v === undefined) continue;
      if (typeof field.type === 'string') {
        writeScalar(buf, at + field.offset, field.type, v as number | bigint);
      } else {
        const items = v as ArrayLike<number | bigint>;
        const step = SCALAR_SIZE[field.type.of];
        const count = Math.min(items.length, field.type.length);
        for (let i = 0; i < count; i++) writeScalar(buf, at + field.offset + i * step, field.type.of, items[i]);
      }
    }
    return buf;
  }

  decode(buf: Buffer, at = 0): Decoded {
    const out: Decoded = {};
    for (const field of this.fields) {
      if (typeof field.type === 'string') {
        out[field.name] = readScalar(buf, at + field.offset, field.type);
      } else {
        const step = SCALAR_SIZE[field.type.of];
        const items: (number | bigint)[] = [];
        for (let i = 0; i < field.type.length; i++)
          items.push(readScalar(buf, at + field.offset + i * step, field.type.of));
        out[field.name] = items as number[] | bigint[];
      }
    }
    return out;
  }
}

export const array = (of: Scalar, length: number): ArrayType => ({ of, length });
