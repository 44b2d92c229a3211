export * from './provider';
export * from './policies';
export * from './grants';
export { PolicyKind } from './validation';
