// The few web APIs StarlingMonkey (componentize-js's engine) provides and
// this agent uses; lib "DOM" would promise far more than exists.
declare function setTimeout(handler: () => void, ms: number): number;
declare class TextDecoder {
  decode(input: Uint8Array): string;
}
