// The BBS models in proto/diego/bbs/v1 must match the BBS wire contract in
// ../shared/spec/bbs-fields.json number for number: every message and enum, every field's
// number, type, label and referenced type, every enum value's number, and exactly the fields
// with explicit presence and the unpacked ones. Names are compared loosely (case and
// underscores), since only numbers travel on the wire.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createFileRegistry, fromBinary, type DescEnum, type DescField, type DescMessage } from '@bufbuild/protobuf';
import {
  FeatureSet_FieldPresence,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorSetSchema,
} from '@bufbuild/protobuf/wkt';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SPEC_PACKAGE = 'diego.bbs.models.';
const PROTO_PACKAGE = 'diego.bbs.v1.';

interface SpecField {
  name: string;
  number: number;
  type: string;
  label: string;
  submsg: string | null;
}

interface Spec {
  messages: Record<string, SpecField[]>;
  enums: Record<string, Record<string, number>>;
  explicit_presence: Record<string, string[]>;
  unpacked: Record<string, string[]>;
}

const spec = JSON.parse(
  readFileSync(path.join(repoRoot, '..', 'shared', 'spec', 'bbs-fields.json'), 'utf8'),
) as Spec;

const registry = createFileRegistry(
  fromBinary(FileDescriptorSetSchema, readFileSync(path.join(repoRoot, 'gen', 'descriptors.binpb'))),
);

/** `diego.bbs.v1.ActualLRP.Presence` -> `ActualLRP.Presence`; the same for the spec's names. */
function shortName(fullName: string, pkg: string): string {
  assert.ok(fullName.startsWith(pkg), `${fullName} is not in ${pkg}`);
  return fullName.slice(pkg.length);
}

/** Field and value names are compared without case and underscores: `PlacementTags` = `placement_tags`. */
function loose(name: string): string {
  return name.toLowerCase().replaceAll('_', '');
}

const protoMessages = new Map<string, DescMessage>();
const protoEnums = new Map<string, DescEnum>();
for (const type of registry) {
  if (!type.typeName.startsWith(PROTO_PACKAGE)) continue;
  // The registry leaves out map entry messages; the spec too lists them only as field types.
  if (type.kind === 'message') protoMessages.set(shortName(type.typeName, PROTO_PACKAGE), type);
  else if (type.kind === 'enum') protoEnums.set(shortName(type.typeName, PROTO_PACKAGE), type);
}

const specMessageNames = Object.keys(spec.messages).map((n) => shortName(n, SPEC_PACKAGE));
const specEnumNames = Object.keys(spec.enums).map((n) => shortName(n, SPEC_PACKAGE));

/** One field in the spec's shape, so that both sides compare as plain rows. */
function protoFieldRow(field: DescField): SpecField {
  const typeName = field.proto.typeName;
  return {
    name: loose(field.name),
    number: field.number,
    type: FieldDescriptorProto_Type[field.proto.type].replace(/^TYPE_/, '').toLowerCase(),
    label: FieldDescriptorProto_Label[field.proto.label].replace(/^LABEL_/, '').toLowerCase(),
    submsg: typeName === '' ? null : SPEC_PACKAGE + shortName(typeName.replace(/^\./, ''), PROTO_PACKAGE),
  };
}

function specFieldRow(field: SpecField): SpecField {
  return { ...field, name: loose(field.name) };
}

const byNumber = (a: { number: number }, b: { number: number }): number => a.number - b.number;

/** UPPER_SNAKE of an enum's short name: the prefix buf's ENUM_VALUE_PREFIX asks for. */
function enumValuePrefix(enumName: string): string {
  return `${enumName.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}_`;
}

/**
 * The names a spec value may match. The BBS spells some values with the enum's Go type name in
 * front (DigestAlgorithmInvalid, LayerTypeInvalid for ImageLayer.Type); the proto value carries
 * that name as its prefix already, so a leading run of the enum's path words may be dropped.
 */
function specValueCandidates(enumPath: string, valueName: string): string[] {
  const words = enumPath.replaceAll('.', '').match(/[A-Z]+(?![a-z])|[A-Z][a-z0-9]*/g) ?? [];
  const candidates = [loose(valueName)];
  for (let start = 0; start < words.length; start++) {
    const typeName = words.slice(start).join('');
    if (valueName.startsWith(typeName) && valueName.length > typeName.length) {
      candidates.push(loose(valueName.slice(typeName.length)));
    }
  }
  return candidates;
}

/** Packable scalars: only these can be packed, so only for these does [packed = false] matter. */
function isPackableList(field: DescField): boolean {
  return (
    field.fieldKind === 'list' &&
    field.proto.type !== FieldDescriptorProto_Type.STRING &&
    field.proto.type !== FieldDescriptorProto_Type.BYTES &&
    field.proto.type !== FieldDescriptorProto_Type.MESSAGE
  );
}

describe('BBS models match the wire contract (spec/bbs-fields.json)', () => {
  test('the package defines exactly the spec messages', () => {
    assert.equal(specMessageNames.length, 118);
    assert.deepEqual([...protoMessages.keys()].sort(), [...specMessageNames].sort());
  });

  test('the package defines exactly the spec enums', () => {
    assert.equal(specEnumNames.length, 9);
    assert.deepEqual([...protoEnums.keys()].sort(), [...specEnumNames].sort());
  });

  describe('fields: number, type, label, referenced type, name', () => {
    for (const [fullName, specFields] of Object.entries(spec.messages)) {
      const name = shortName(fullName, SPEC_PACKAGE);
      test(name, () => {
        const message = protoMessages.get(name);
        assert.ok(message, `message ${name} is missing`);
        const got = message.fields.map(protoFieldRow).sort(byNumber);
        const want = specFields.map(specFieldRow).sort(byNumber);
        assert.deepEqual(got, want);
      });
    }
  });

  describe('enum values: numbers, and names after the prefix', () => {
    for (const [fullName, specValues] of Object.entries(spec.enums)) {
      const name = shortName(fullName, SPEC_PACKAGE);
      test(name, () => {
        const protoEnum = protoEnums.get(name);
        assert.ok(protoEnum, `enum ${name} is missing`);
        const prefix = enumValuePrefix(protoEnum.name);
        const got = protoEnum.values
          .map((v) => {
            assert.ok(v.name.startsWith(prefix), `${name}.${v.name} lacks the prefix ${prefix}`);
            return { number: v.number, name: loose(v.name.slice(prefix.length)) };
          })
          .sort(byNumber);
        const protoNameOf = new Map(got.map((v) => [v.number, v.name]));
        // A spec value takes the proto's spelling when one of its candidates matches it, so a
        // real mismatch shows in the diff with the spec's own name.
        const want = Object.entries(specValues)
          .map(([valueName, number]) => {
            const candidates = specValueCandidates(name, valueName);
            const protoName = protoNameOf.get(number);
            return {
              number,
              name: protoName !== undefined && candidates.includes(protoName) ? protoName : candidates[0],
            };
          })
          .sort(byNumber);
        assert.deepEqual(got, want);
      });
    }
  });

  test('map fields are proto maps with the BBS key and value types', () => {
    // The spec only names the entry messages; their key and value types come from the BBS
    // protos (spec/diego-today.md §1.5: routes map<string, bytes>, metric tags, properties).
    const cases = [
      { entry: 'ProtoRoutes.RoutesEntry', key: 'string', value: 'bytes' },
      { entry: 'Network.PropertiesEntry', key: 'string', value: 'string' },
      { entry: 'CellPresence.AnnotationsEntry', key: 'string', value: 'string' },
      { entry: 'ActualLRP.MetricTagsEntry', key: 'string', value: 'string' },
      { entry: 'StartActualLRPRequest.MetricTagsEntry', key: 'string', value: 'string' },
      { entry: 'EvacuateRunningActualLRPRequest.MetricTagsEntry', key: 'string', value: 'string' },
      { entry: 'TaskDefinition.MetricTagsEntry', key: 'string', value: 'MetricTagValue' },
      { entry: 'DesiredLRP.MetricTagsEntry', key: 'string', value: 'MetricTagValue' },
      { entry: 'DesiredLRPRunInfo.MetricTagsEntry', key: 'string', value: 'MetricTagValue' },
      { entry: 'DesiredLRPUpdate.MetricTagsEntry', key: 'string', value: 'MetricTagValue' },
    ];
    const specEntries = Object.values(spec.messages)
      .flat()
      .map((f) => f.submsg)
      .filter((s): s is string => s !== null && s.endsWith('Entry'))
      .map((s) => shortName(s, SPEC_PACKAGE));
    assert.deepEqual([...specEntries].sort(), cases.map((c) => c.entry).sort());

    // Every map entry the protos declare, read from the raw descriptors (name, key, value).
    const scalarName = (t: FieldDescriptorProto_Type): string =>
      FieldDescriptorProto_Type[t].replace(/^TYPE_/, '').toLowerCase();
    const got: { entry: string; key: string; value: string }[] = [];
    for (const [name, message] of protoMessages) {
      for (const nested of message.proto.nestedType) {
        if (nested.options?.mapEntry !== true) continue;
        const [key, value] = [1, 2].map((n) => nested.field.find((f) => f.number === n));
        assert.ok(key && value, `${name}.${nested.name} lacks its key or value field`);
        got.push({
          entry: `${name}.${nested.name}`,
          key: scalarName(key.type),
          value:
            value.type === FieldDescriptorProto_Type.MESSAGE
              ? shortName(value.typeName.replace(/^\./, ''), PROTO_PACKAGE)
              : scalarName(value.type),
        });
        const mapField = message.fields.find((f) => f.proto.typeName === `.${message.typeName}.${nested.name}`);
        assert.equal(mapField?.fieldKind, 'map', `${name}.${nested.name} is not used by a map field`);
      }
    }
    const byEntry = (a: { entry: string }, b: { entry: string }): number => a.entry.localeCompare(b.entry);
    assert.deepEqual(got.sort(byEntry), [...cases].sort(byEntry));
  });

  test('exactly the spec fields have proto3 optional (explicit presence)', () => {
    const want = Object.entries(spec.explicit_presence)
      .flatMap(([message, fields]) => fields.map((f) => `${shortName(message, SPEC_PACKAGE)}.${loose(f)}`))
      .sort();
    assert.equal(want.length, 11);
    const optional: string[] = [];
    const explicitScalars: string[] = [];
    for (const [name, message] of protoMessages) {
      for (const field of message.fields) {
        if (field.proto.proto3Optional === true) optional.push(`${name}.${loose(field.name)}`);
        // Message fields always have presence; scalars and enums only when declared optional.
        const singularScalar = field.fieldKind === 'scalar' || field.fieldKind === 'enum';
        if (singularScalar && field.presence === FeatureSet_FieldPresence.EXPLICIT) {
          explicitScalars.push(`${name}.${loose(field.name)}`);
        }
      }
    }
    assert.deepEqual(optional.sort(), want);
    assert.deepEqual(explicitScalars.sort(), want);
  });

  test('exactly the spec fields are unpacked', () => {
    const want = Object.entries(spec.unpacked)
      .flatMap(([message, fields]) => fields.map((f) => `${shortName(message, SPEC_PACKAGE)}.${loose(f)}`))
      .sort();
    assert.equal(want.length, 3);
    const unpacked: string[] = [];
    for (const [name, message] of protoMessages) {
      for (const field of message.fields) {
        if (isPackableList(field) && field.fieldKind === 'list' && !field.packed) {
          unpacked.push(`${name}.${loose(field.name)}`);
        }
      }
    }
    assert.deepEqual(unpacked.sort(), want);
  });

  test('no real oneofs: the BBS uses plain fields (Action) and proto3 optional only', () => {
    const oneofs: string[] = [];
    for (const [name, message] of protoMessages) {
      for (const oneof of message.oneofs) oneofs.push(`${name}.${oneof.name}`);
    }
    assert.deepEqual(oneofs, []);
  });
});
