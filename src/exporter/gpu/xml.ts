// fast-xml-parser (9 MB of RSS here) is loaded when something parses XML (a libvirt collector's domain XML,
// nvidia-smi's output), not by every exporter: whoever is about to parse awaits loadXmlParser() first.

type Xml = typeof import('fast-xml-parser');

let loaded: Xml | undefined;

export async function loadXmlParser(): Promise<Xml> {
  loaded ??= await import('fast-xml-parser');
  return loaded;
}

/** The parser module; throws when loadXmlParser() was not awaited before. */
export function xmlParser(): Xml {
  if (!loaded) throw new Error('fast-xml-parser is not loaded: await loadXmlParser() first');
  return loaded;
}
