// The descriptors of every proto in proto/, as `npm run gen` wrote them to gen/descriptors.binpb.
// The gateway's routes, the legacy JSON codec and gRPC reflection all read them from here, so
// behaviour declared in the contracts needs no hand-written tables.
import { readFileSync } from 'node:fs';
import {
  createFileRegistry,
  fromBinary,
  getOption,
  hasOption,
  type DescEnumValue,
  type DescExtension,
  type DescField,
  type DescMessage,
  type DescMethod,
  type FileRegistry,
  type Message,
} from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';

export const DESCRIPTOR_SET_URL = new URL('../gen/descriptors.binpb', import.meta.url);

let registry: FileRegistry | undefined;

/** The registry of all descriptors, loaded once. */
export function descriptorRegistry(): FileRegistry {
  registry ??= createFileRegistry(fromBinary(FileDescriptorSetSchema, new Uint8Array(readFileSync(DESCRIPTOR_SET_URL))));
  return registry;
}

export function messageDescriptor(typeName: string): DescMessage {
  const desc = descriptorRegistry().getMessage(typeName);
  if (!desc) throw new Error(`unknown message type ${typeName}: run npm run gen`);
  return desc;
}

function extension(name: string): DescExtension {
  const ext = descriptorRegistry().getExtension(name);
  if (!ext) throw new Error(`unknown extension ${name}: run npm run gen`);
  return ext;
}

/** The value of a custom option, or undefined when the element does not set it. */
export function optionOf<T extends Message>(
  element: DescField | DescMethod | DescEnumValue,
  extensionName: string,
): T | undefined {
  const ext = extension(extensionName);
  return hasOption(element, ext) ? (getOption(element, ext) as unknown as T) : undefined;
}
