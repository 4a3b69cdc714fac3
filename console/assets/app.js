// app.js: the console's router. #/ is the fleet, #/c/<serial> one
// controller. Each view returns a function that stops its polling.
import { askToken } from "./api.js";
import { fleetView } from "./fleet.js";
import { controllerView } from "./controller.js";

const view = document.getElementById("view");
let stop = () => {};

function route() {
  stop();
  const m = location.hash.match(/^#\/c\/([A-Za-z0-9_-]{1,64})$/);
  view.replaceChildren();
  stop = m ? controllerView(view, m[1]) : fleetView(view);
  window.scrollTo(0, 0);
}

document.getElementById("token-button").addEventListener("click", async () => {
  if (await askToken("Enter the API token to use, or forget the one in use.")) route();
});
window.addEventListener("hashchange", route);
route();
