export function App() {
  return <main><h1>Weft</h1></main>;
}
